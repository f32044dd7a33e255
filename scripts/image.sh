#!/usr/bin/env bash
# Build the petbreed container image with podman, from the Containerfile at
# the repository's root.
#
#   scripts/image.sh                         # localhost/petbreed:dev, the model comes from a mounted store
#   MODEL=model.onnx scripts/image.sh        # the same image with that model baked in at /models/model.onnx
#   IMAGE=registry.example/petbreed:1.0 BASE=debian:bookworm-slim GO_IMAGE=golang:1.26-bookworm scripts/image.sh
#
# Where no registry can be reached (BASE and GO_IMAGE unset), it makes both
# base images locally, once per machine, and keeps them in podman's storage:
#   localhost/base:bookworm      debootstrap --variant=minbase from Debian's mirror, slimmed like debian:*-slim
#   localhost/golang:1.26-bookworm  that base plus this machine's Go (GOROOT), an equivalent of golang:1.26-bookworm
# and builds with the host's Go module and build caches mounted read-only /
# read-write, with GOPROXY=off (only Debian's mirror is reachable in a build).
#
# Environment: IMAGE, MODEL, BASE, GO_IMAGE, DEBIAN_MIRROR, CONTAINERS_CONF
# (default: deploy/containers.conf), VERSION (default: git describe).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers.conf}

IMAGE=${IMAGE:-localhost/petbreed:dev}
MODEL=${MODEL:-}
BASE=${BASE:-}
GO_IMAGE=${GO_IMAGE:-}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=${SOURCE:-$(git remote get-url origin 2>/dev/null || echo "")}

ort=third_party/onnxruntime/libonnxruntime.so.1
[ -f "$ort" ] || { echo "image: $ort is missing (run make onnxruntime)" >&2; exit 1; }
if [ -n "$MODEL" ] && [ ! -f "$MODEL" ]; then
  echo "image: MODEL=$MODEL: no such file" >&2
  exit 1
fi
command -v podman >/dev/null || { echo "image: podman is needed (scripts/deps.sh installs it)" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# make_base: a Debian bookworm base image from Debian's mirror, made once.
make_base() {
  local ref=localhost/base:bookworm
  if podman image exists "$ref"; then
    BASE=$ref
    return
  fi
  command -v debootstrap >/dev/null || { echo "image: debootstrap is needed (scripts/deps.sh installs it)" >&2; exit 1; }
  local t0 rootfs=$tmp/rootfs
  t0=$(now)
  echo "image: making $ref with debootstrap (once per machine)" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # Slim it as Debian's -slim images are: no documentation but the copyright
  # files, no man pages or translations, no package lists or downloads.
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -not -type l -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
EOF
  tar -C "$rootfs" --numeric-owner -c . |
    podman import -q --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$ref" >/dev/null
  rm -rf "$rootfs"
  echo "image: base $ref made in $(since "$t0")" >&2
  BASE=$ref
}

# make_go_image: the base plus this machine's Go toolchain, where golang:1.26
# cannot be pulled. Remade when the host's Go version changes.
make_go_image() {
  local ref=localhost/golang:1.26-bookworm goversion t0
  goversion=$(go env GOVERSION)
  if podman image exists "$ref" &&
    [ "$(podman image inspect -f '{{index .Labels "petbreed.go.version"}}' "$ref")" = "$goversion" ]; then
    GO_IMAGE=$ref
    return
  fi
  t0=$(now)
  echo "image: making $ref from $(go env GOROOT) ($goversion)" >&2
  cat >"$tmp/Containerfile.go" <<EOF
FROM $BASE
COPY . /usr/local/go
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL petbreed.go.version=$goversion
EOF
  podman build -q --format docker -f "$tmp/Containerfile.go" -t "$ref" "$(go env GOROOT)" >/dev/null
  echo "image: $ref made in $(since "$t0")" >&2
  GO_IMAGE=$ref
}

args=(--format docker --layers
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" --build-arg SOURCE="$SOURCE")
t0=$(now)
if [ -z "$BASE" ]; then
  make_base
fi
if [ -z "$GO_IMAGE" ]; then
  command -v go >/dev/null || { echo "image: set GO_IMAGE (e.g. golang:1.26-bookworm) or install Go" >&2; exit 1; }
  make_go_image
  # No Go module proxy inside the build: the host's caches stand in.
  modcache=$(go env GOMODCACHE) gocache=$(go env GOCACHE)
  go mod download # fills the host's module cache if needed (outside the build)
  mkdir -p "$gocache"
  args+=(--build-arg GOPROXY=off --build-arg GOFLAGS=-mod=readonly
    --volume "$modcache:/go/pkg/mod:ro" --volume "$gocache:/root/.cache/go-build")
fi
args+=(--build-arg BASE="$BASE" --build-arg GO_IMAGE="$GO_IMAGE")
echo "image: bases ready in $(since "$t0") (BASE=$BASE GO_IMAGE=$GO_IMAGE)" >&2

if [ -n "$MODEL" ]; then
  mkdir -p "$tmp/model"
  cp "$MODEL" "$tmp/model/model.onnx"
  args+=(--target baked --build-context "model=$tmp/model")
fi

t0=$(now)
podman build "${args[@]}" -t "$IMAGE" -f Containerfile . >"$tmp/build.log" 2>&1 ||
  { tail -40 "$tmp/build.log" >&2; echo "image: podman build failed" >&2; exit 1; }
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
echo "image: built $IMAGE in $(since "$t0"), $(awk -v s="$size" 'BEGIN{printf "%.1f MB", s/1e6}') uncompressed${MODEL:+ (model $MODEL baked in)}" >&2
