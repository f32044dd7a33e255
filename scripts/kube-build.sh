#!/usr/bin/env bash
# Build the tools scripts/test-deploy.sh needs, each pinned, into a
# git-ignored cache keyed by version (a warm run only checks they exist):
#   - kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
#     one Kubernetes release, from the Go module proxy through the separate
#     module tools/kube (its go.mod pins the release and maps the staging
#     modules to their published copies; the project's go.mod never sees it);
#   - kwok (fake nodes that mark pods running) and kustomize.
# Prints the directory holding the binaries on stdout; logs go to stderr.
#
# Usage: scripts/kube-build.sh            (build if missing, print the bin dir)
#        KUBE_FORCE=1 scripts/kube-build.sh   (rebuild even if present)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/tools/kube"
KUBE_VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.1}
[ -n "$KUBE_VERSION" ] || { echo "kube-build: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }

cache="$root/.cache/kube"
kbin="$cache/kubernetes-$KUBE_VERSION"
tbin="$cache/tools-kwok-$KWOK_VERSION-kustomize-$KUSTOMIZE_VERSION"
cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { echo "kube-build: $*" >&2; }

have_all() {
  local d=$1; shift
  for c in "$@"; do [ -x "$d/$c" ] || return 1; done
}

# The Kubernetes binaries are static Go programs (Kubernetes' own release
# builds them with cgo off); the version is stamped as its Makefile does,
# else they report v0.0.0-master and kubectl warns about the skew.
if [ "${KUBE_FORCE:-}" = 1 ] || ! have_all "$kbin" "${cmds[@]}"; then
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  log "building Kubernetes $KUBE_VERSION (${cmds[*]}); cold: several minutes and ~5 GB of Go caches"
  start=$SECONDS
  rm -rf "$kbin.tmp" && mkdir -p "$kbin.tmp"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$kbin.tmp/" "${pkgs[@]}")
  rm -rf "$kbin" && mv "$kbin.tmp" "$kbin"
  log "Kubernetes $KUBE_VERSION built in $((SECONDS - start)) s"
fi

if [ "${KUBE_FORCE:-}" = 1 ] || ! have_all "$tbin" kwok kustomize; then
  log "installing kwok $KWOK_VERSION and kustomize $KUSTOMIZE_VERSION"
  start=$SECONDS
  rm -rf "$tbin.tmp" && mkdir -p "$tbin.tmp"
  # go install pkg@version ignores the current module, as intended (one
  # module per call).
  for pkg in "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"; do
    (cd "$root" && CGO_ENABLED=0 GOBIN="$tbin.tmp" GOFLAGS='' go install -trimpath -ldflags "-s -w" "$pkg")
  done
  # kwok needs Stage files (what happens to a fake node and pod); its module
  # ships them, and the module cache is read-only, so copy the three used.
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  mkdir -p "$tbin.tmp/stages"
  for s in node/fast node/heartbeat pod/fast; do
    for f in "$src/$s"/*.yaml; do
      case $(basename "$f") in kustomization.yaml) continue ;; esac
      cp "$f" "$tbin.tmp/stages/${s//\//-}-$(basename "$f")"
    done
  done
  rm -rf "$tbin" && mv "$tbin.tmp" "$tbin"
  log "kwok and kustomize installed in $((SECONDS - start)) s"
fi

# One directory on stdout: link the two sets together.
out="$cache/bin"
mkdir -p "$out"
for c in "${cmds[@]}"; do ln -sfn "$kbin/$c" "$out/$c"; done
for c in kwok kustomize; do ln -sfn "$tbin/$c" "$out/$c"; done
rm -rf "$out/stages" && ln -sfn "$tbin/stages" "$out/stages"
echo "$out"
