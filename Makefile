# racklift build and test. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# Go lives in /usr/local/go/bin, which a bare environment may not have on PATH.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/racklift
# timetzdata embeds the zone database so the static binary validates time
# zones on a USB live image without /usr/share/zoneinfo.
TAGS    := timetzdata

.PHONY: help build agent demo e2e test test-fresh unit integration deps lint fmt vet staticcheck bench fuzz clean ci

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build the static binary bin/racklift
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/racklift
	@echo "built $(BIN) ($(VERSION))"

agent: ## build the deploy agent directory out/agent (signed kernel, initramfs, shim, GRUB) from Debian packages
	hack/agent/build.sh $(AGENT_OUT)

demo: deps build ## a live virtual site: QEMU VMs + ipmi_sim BMCs + racklift serve; dashboard on 127.0.0.1:8081 (root; Ctrl-C stops)
	./$(BIN) demo
	CGO_ENABLED=1 $(GO) test -c -tags integration -o bin/e2e.test ./hack/e2e
	cd hack/e2e && RACKLIFT_DEMO=1 ../../bin/e2e.test -test.run '^TestDemo$$' -test.v -test.timeout 0

e2e: deps ## the virtual-site end-to-end tests (E2E_NODES=N, default 2: BIOS + UEFI; TestImageInstall: Debian 12 on BIOS, Secure Boot, UEFI); part of make test
	CGO_ENABLED=1 $(GO) test -tags integration -count=1 -v -timeout 45m ./hack/e2e

test: deps lint unit integration ## run every test (installs the Debian packages tests need)

ci: test ## what CI runs (.ci/run)

test-fresh: ## make test in a fresh clone with empty Go caches, as a new machine does (FRESH_RUNS=3 for three in a row)
	hack/test-fresh.sh

unit: ## fast tests: go test -race ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m ./...

integration: ## real-peer tests (netns, QEMU, ipmi_sim, validators); needs root
	CGO_ENABLED=1 $(GO) test -tags integration -count=1 -p 1 -timeout 60m ./...

deps: ## install missing Debian packages the tests use (apt-get, as root)
	hack/install-deps.sh

lint: fmt vet staticcheck ## gofmt, go vet, staticcheck (pinned in go.mod)

fmt:
	@out="$$(gofmt -l cmd provision boot profiles templates webui hack 2>/dev/null || true)"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

staticcheck:
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags integration ./...

bench: ## Go benchmarks, then racklift vs kea, dnsmasq, tftpd-hpa, nginx (root; hack/bench/RESULTS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...
	hack/bench/run.sh $(BENCH_ARGS)

fuzz: ## fuzz the plan loader, DHCP and ISO parsers (60 s each; corpora in testdata/fuzz)
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 60s ./provision/plan
	$(GO) test -run '^$$' -fuzz FuzzProcess -fuzztime 60s ./boot/dhcp
	$(GO) test -run '^$$' -fuzz FuzzISO -fuzztime 60s -fuzzminimizetime 1s ./boot/media

.PHONY: live-image test-live image-debian12

image-debian12: ## build the Debian 12 disk image out/debian12.raw (root; BIOS + Secure Boot; reused while its inputs are unchanged)
	hack/image/build-debian12.sh

live-image: build ## build the USB live image out/racklift-live.iso (root; a few minutes, downloads cached)
	hack/live/build.sh

test-live: live-image ## boot the live image in QEMU (BIOS, UEFI, safe mode); slow, so not part of make test
	hack/live/test.sh

clean: ## remove build output
	rm -rf bin
