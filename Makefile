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

.PHONY: all deps onnxruntime build test bench demo vet clean

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

test: deps onnxruntime
	$(GOTEST) -count=1 ./...

# Benchmarks with the real model and images; figures go to docs/benchmarks.md.
bench: deps onnxruntime
	$(GOTEST) -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...

demo: build
	@echo "== petbreed: classify the shared photos with the ImageNet MobileNetV2 (int8)"
	$(BIN) predict --model $(ASSETS)/backbone/mobilenetv2-12-int8.onnx \
		--labels $(ASSETS)/backbone/imagenet_labels.txt --top-k 3 $(ASSETS)/photos

clean:
	rm -rf bin
