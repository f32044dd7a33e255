#!/usr/bin/env bash
# Install the system packages petbreed builds and tests with, if missing:
# a C compiler for cgo and libjpeg-turbo's headers (the JPEG decoder Pillow
# uses too). Debian/Ubuntu only; elsewhere it says what is needed.
set -euo pipefail

# webp: cwebp makes WebP test images from the shared photos (tests only).
# chromium: the web page's tests drive a real headless browser (tests only).
# python3-pil: Pillow 9.4 decodes those WebPs for the parity test (tests only).
# etcd-server: the store of the Kubernetes control plane make test-deploy runs (tests only);
# catatonit: the pause process of the pod podman kube play makes there.
# podman buildah runc debootstrap: make image / make test-image (runc: crun
# refuses these machines' hybrid cgroups); curl: test-image's probes.
# make lint runs shellcheck over scripts/*.sh and the CI workflow's scripts.
# python3-flask ... python3-importlib-metadata, jq: the real MLflow 2.17.2 tracking server the
# tests run from ../shared/mlflow-server (its README lists exactly these; tests only).
pkgs=(gcc libc6-dev libjpeg62-turbo-dev webp python3-pil chromium fonts-liberation etcd-server
  podman buildah runc debootstrap curl shellcheck catatonit
  python3-flask python3-sqlalchemy python3-alembic python3-gunicorn python3-protobuf python3-yaml
  python3-packaging python3-click python3-requests python3-sqlparse python3-cachetools
  python3-importlib-metadata jq)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "deps: please install ${missing[*]} (a C compiler and libjpeg-turbo headers)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
