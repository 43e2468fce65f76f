# orderstream's container image: a static binary on distroless, run as non-root.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t orderstream .
#   docker run -p 8080:8080 -e ORDERSTREAM_DATABASE_URL=postgres://… \
#       -e ORDERSTREAM_AUTH_STAFF_TOKEN=… orderstream
#
# The binary embeds its SQL migrations and pages, and applies pending migrations at
# start-up. Secrets (the database URL, the staff token) come only from the
# environment; docs/operations.md describes the rest of the configuration.

# The official Go images set GOTOOLCHAIN=local, so this must be at least the
# go line of go.mod (1.26.8); the 1.26 tag follows the latest patch release.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Modules first, in a layer of their own that survives source changes.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/orderstream ./cmd/orderstream

FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
LABEL org.opencontainers.image.title="orderstream" \
      org.opencontainers.image.description="Pizza orders with live status over Server-Sent Events" \
      org.opencontainers.image.source="https://github.com/orderstream/orderstream" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/orderstream /orderstream
# The binary reads config/orderstream.yaml relative to its working directory.
WORKDIR /app
COPY config/orderstream.yaml /app/config/orderstream.yaml

# Logs for collectors; override with ORDERSTREAM_LOG_FORMAT=text.
ENV ORDERSTREAM_LOG_FORMAT=json
# The image's nonroot user (65532), spelled out.
USER nonroot:nonroot
EXPOSE 8080

# Distroless has no shell and no curl: the binary asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["/orderstream", "healthcheck"]

# SIGTERM (Docker's stop signal) ends open streams and drains within
# http.shutdown_timeout (8 s), inside Docker's 10 s stop grace period.
ENTRYPOINT ["/orderstream"]
CMD ["serve"]
