# Runway's build. `make demo` is the README's first command, `make test` its second.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/runwayhq/runway/internal/cli.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Count-based: a duration-based -fuzztime can fail with "context deadline exceeded"
# and no crasher (golang/go#75804, fixed only in Go 1.27).
FUZZTIME  ?= 10000x

.PHONY: build hello lint test fuzz demo demo-containers clean docs k8s-bin e2e-kubernetes-node

build: hello
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/runway ./cmd/runway

hello:
	cd examples/hello && $(GO) build -o bin/hello .

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: lint
	$(GO) test -race -timeout 20m ./...
	$(MAKE) fuzz

# Short fuzzing runs of every fuzz target (go test -fuzz takes one target per run).
fuzz:
	@set -e; for spec in $$($(GO) run ./internal/tools/fuzztargets); do \
	  pkg=$${spec%%:*}; fn=$${spec##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The Kubernetes control plane target kubernetes' tests start (internal/k8stest),
# built once and cached by version.
k8s-bin:
	./scripts/k8s-build.sh

# Opt-in, as root, changes the host (containerd, a bridge, an iptables
# chain): target kubernetes on a real kubelet + containerd node, releases
# under load through the in-cluster proxy (docs/kubernetes.md). Not in CI.
e2e-kubernetes-node:
	./scripts/e2e-kubernetes-node.sh

docs: build
	$(BIN)/runway docs manifest > docs/manifest.md

demo: build
	./scripts/demo.sh

# The main job on target docker: examples/containers on a private podman.
demo-containers: build
	./scripts/demo-containers.sh

clean:
	rm -rf $(BIN) examples/hello/bin
