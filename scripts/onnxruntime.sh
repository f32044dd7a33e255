#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library for this machine from the npm package
# onnxruntime-node, check the package's sha256, and extract only the library
# into third_party/onnxruntime/. The package's install script is never run
# (it downloads); `npm pack` only fetches the tarball from the registry.
set -euo pipefail

version=1.30.0
# sha256 of onnxruntime-node-$version.tgz as served by the npm registry.
want_sha=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
lib_name=libonnxruntime.so.1

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/onnxruntime"

case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "onnxruntime: no library for $(uname -m) in onnxruntime-node" >&2; exit 1 ;;
esac

if [ -f "$dest/$lib_name" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version linux/$arch" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "onnxruntime: npm is needed to fetch onnxruntime-node (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "onnxruntime: fetching onnxruntime-node@$version" >&2
(cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$version" >/dev/null)
tgz="$tmp/onnxruntime-node-$version.tgz"
got_sha=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got_sha" != "$want_sha" ]; then
  echo "onnxruntime: sha256 mismatch for $(basename "$tgz"): got $got_sha, want $want_sha" >&2
  exit 1
fi
member="package/bin/napi-v6/linux/$arch/$lib_name"
tar -xzf "$tgz" -C "$tmp" "$member"
mkdir -p "$dest"
# Rename into place so an interrupted fetch never leaves a partial library.
cp "$tmp/$member" "$dest/.$lib_name.tmp"
mv -f "$dest/.$lib_name.tmp" "$dest/$lib_name"
printf '%s linux/%s' "$version" "$arch" > "$dest/VERSION.tmp" && mv -f "$dest/VERSION.tmp" "$dest/VERSION"
echo "onnxruntime: $dest/$lib_name ($(stat -c %s "$dest/$lib_name") bytes)" >&2
