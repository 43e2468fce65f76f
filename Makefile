BINARY      := orderstream
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BENCHTIME   ?= 1s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The database of run and demo: ORDERSTREAM_DATABASE_URL when set, else the private
# development server of scripts/devdb.sh (started when needed).
DATABASE_URL = $${ORDERSTREAM_DATABASE_URL:-$$(scripts/devdb.sh)}

# The staff token of run and demo when ORDERSTREAM_AUTH_STAFF_TOKEN is not set: for a
# machine of your own only. Set a real secret anywhere else.
DEV_TOKEN = $${ORDERSTREAM_AUTH_STAFF_TOKEN:-dev-staff-token}

.PHONY: build run demo test test-short node-deps bench lint fmt db-up db-down docker compose-check clean

build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/$(BINARY) ./cmd/$(BINARY)

run: build
	@url="$(DATABASE_URL)" && ORDERSTREAM_DATABASE_URL="$$url" \
		ORDERSTREAM_AUTH_STAFF_TOKEN="$(DEV_TOKEN)" exec bin/$(BINARY)

demo: build
	@url="$(DATABASE_URL)" && ORDERSTREAM_DATABASE_URL="$$url" \
		ORDERSTREAM_AUTH_STAFF_TOKEN="$(DEV_TOKEN)" exec bin/$(BINARY) --demo

# The Node client test follows a stream with the eventsource package from npm.
NODE_TEST := cmd/orderstream/testdata/node

node-deps:
	@[ -d $(NODE_TEST)/node_modules/eventsource ] || npm ci --prefix $(NODE_TEST) --no-audit --no-fund

test: node-deps
	go test -race -count=1 -timeout 40m ./...

test-short: node-deps
	go test -count=1 -timeout 40m ./...

bench:
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

lint:
	@files=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	go vet ./...
	@if go run $(STATICCHECK) -version >/dev/null 2>&1; then go run $(STATICCHECK) ./...; \
	else echo "staticcheck could not be installed: skipped"; fi

fmt:
	gofmt -w .

db-up:
	@scripts/devdb.sh

db-down:
	@scripts/devdb.sh stop

docker:
	docker build --build-arg VERSION=$(VERSION) -t $(BINARY):$(VERSION) .

# Checks docker-compose.yml without a Docker engine: syntax, interpolation, references.
compose-check:
	@command -v docker-compose >/dev/null || { echo "compose-check: docker-compose not found;" \
		"install it (Debian: apt-get install docker-compose)" >&2; exit 1; }
	docker-compose config -q

clean:
	rm -rf bin
