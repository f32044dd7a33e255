# petbreed: `make demo` runs the main job, `make test` runs every test.
# Both install what they need (system packages, the ONNX Runtime library).

SHARED  ?= $(abspath ../shared)
ASSETS  := $(SHARED)/assets
BIN     := bin/petbreed
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOTEST  ?= go test
BENCHTIME ?= 2s

export CGO_ENABLED := 1
# The tests and benchmarks read the shared assets from here.
export PETBREED_ASSETS := $(ASSETS)

.PHONY: all deps onnxruntime build test bench bench-serve soak demo vet clean image test-image

all: build

deps:
	@./scripts/deps.sh

# The ONNX Runtime shared library, from the npm package onnxruntime-node
# (sha256-checked), into third_party/onnxruntime/ (git-ignored).
onnxruntime:
	@./scripts/onnxruntime.sh

build: deps onnxruntime
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/petbreed

vet:
	go vet ./...

# The CI workflow (actionlint, pinned) and the shell scripts (shellcheck).
.PHONY: lint
lint: deps
	./scripts/lint.sh

test: deps onnxruntime lint
	$(GOTEST) -count=1 ./...
	$(MAKE) test-image
	$(MAKE) test-deploy

# Every fuzz target of the module, one at a time, $(FUZZTIME) each
# (scripts/fuzz.sh; make test already runs their seeds).
FUZZTIME ?= 20s
.PHONY: fuzz
fuzz: deps onnxruntime
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The container image (podman; docs/deploy.md), IMAGE=name:tag to rename it,
# MODEL=path/to/model.onnx to bake one model in.
IMAGE ?= localhost/petbreed:dev
MODEL ?=
image: deps onnxruntime
	IMAGE='$(IMAGE)' MODEL='$(MODEL)' VERSION='$(VERSION)' ./scripts/image.sh

# The image run for real: read-only, no capabilities, uid 65532, on loopback.
test-image: image
	IMAGE='$(IMAGE)' ./scripts/test-image.sh

# The Kubernetes and KServe manifests (deploy/) on a real control plane on
# loopback (etcd, kube-apiserver, -controller-manager, -scheduler, kwok's
# fake nodes), then the rendered Deployment under podman with the image.
# The Kubernetes binaries are built once into .cache/kube (minutes, cold).
.PHONY: test-deploy
test-deploy: deps image
	PETBREED_IMAGE='$(IMAGE)' ./scripts/test-deploy.sh

# Benchmarks with the real model and images; figures go to docs/benchmarks.md.
bench: deps onnxruntime
	$(GOTEST) -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...
	./scripts/bench-serve.sh

# The server on loopback: start to ready, c=1 and c=32 latency and
# throughput, peak RSS, against the model alone; then several models in one
# server (one, a 50/50 split, a full shadow; MODELS=0 skips) (Markdown tables).
bench-serve: deps onnxruntime
	./scripts/bench-serve.sh

# A bounded soak on loopback: c=64, 20,000 requests, errors but 503 and RSS
# growth (docs/benchmarks.md).
soak: deps onnxruntime
	./scripts/soak.sh

# The main job: train on pets-3breeds with the shared backbone (features
# cached, experiments tracked in ./mlruns, the best registered as
# models:/pet-breed@champion), then classify a few images with the champion.
DEMO_IMAGES := $(ASSETS)/pets-3breeds/images/Abyssinian_1.jpg \
	$(ASSETS)/pets-3breeds/images/Bengal_1.jpg \
	$(ASSETS)/pets-3breeds/images/american_bulldog_10.jpg \
	$(ASSETS)/pets-3breeds/images/Abyssinian_34.jpg

demo: build
	@echo "== petbreed pipeline: features, experiments, selection, test evaluation, registration"
	$(BIN) pipeline --data $(ASSETS)/pets-3breeds --backbone $(ASSETS)/backbone/mobilenetv2-12-int8.onnx
	@echo
	@echo "== petbreed predict with models:/pet-breed@champion"
	$(BIN) predict --top-k 3 $(DEMO_IMAGES)
	@echo
	@echo "== the runs and the registry (MLflow's file store in ./mlruns)"
	$(BIN) runs
	$(BIN) models

clean:
	rm -rf bin
