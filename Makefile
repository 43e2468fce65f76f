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

.PHONY: build run demo test test-short bench lint fmt db-up db-down docker clean

build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/$(BINARY) ./cmd/$(BINARY)

run: build
	@url="$(DATABASE_URL)" && ORDERSTREAM_DATABASE_URL="$$url" \
		ORDERSTREAM_AUTH_STAFF_TOKEN="$(DEV_TOKEN)" exec bin/$(BINARY)

demo: build
	@url="$(DATABASE_URL)" && ORDERSTREAM_DATABASE_URL="$$url" \
		ORDERSTREAM_AUTH_STAFF_TOKEN="$(DEV_TOKEN)" exec bin/$(BINARY) --demo

test:
	go test -race -count=1 -timeout 40m ./...

test-short:
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
	docker build -t $(BINARY):$(VERSION) .

clean:
	rm -rf bin
