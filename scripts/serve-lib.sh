#!/usr/bin/env bash
# Shell helpers shared by the scripts that run `petbreed serve` on loopback
# and drive it with bin/loadgen (bench-serve.sh, soak.sh). Source it after
# setting: tmp (a scratch folder), log (the server's log file); it uses
# pid (the server's process id while it runs) and child (a background
# loadgen) and sets shutdown_rc and shutdown_s.
# shellcheck shell=bash
# The variables set here are read by the scripts that source this file, and
# tmp and log are theirs:
# shellcheck disable=SC2034,SC2154

pid=""   # the server's process id while it runs
child="" # a loadgen running in the background (see capture)

say() { echo "$(basename "$0" .sh): $*" >&2; }
die() {
  say "$*"
  exit 1
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
  local st
  st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}

# stop_server SECONDS: SIGTERM, wait up to SECONDS for the exit, then SIGKILL.
# Sets shutdown_rc (the server's exit status) and shutdown_s (time to exit).
stop_server() {
  local limit=$1 t0 i=0
  shutdown_rc="" shutdown_s=""
  [[ -n $pid ]] || return 0
  t0=$EPOCHREALTIME
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid" && ((i < limit * 100)); do
    sleep 0.01
    i=$((i + 1))
  done
  if alive "$pid"; then
    say "the server did not exit ${limit}s after SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    shutdown_s=timeout
  else
    shutdown_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  fi
  shutdown_rc=0
  wait "$pid" 2>/dev/null || shutdown_rc=$?
  pid=""
}

show_log() {
  if [[ -s $log ]]; then
    say "last lines of the server's log:"
    tail -n 20 "$log" | sed 's/^/  | /' >&2
  fi
}

# capture FILE CMD...: run CMD with its stdout in FILE. It runs in the
# background and the script waits for it, because bash runs a signal's trap
# only once the foreground command is done: this way an interrupt stops the
# run at once.
capture() {
  local file=$1 rc=0
  shift
  "$@" >"$file" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# cleanup: the EXIT trap: stop a loadgen and the server, remove tmp.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $child ]]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [[ -n $pid ]]; then
    stop_server 5 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}

# read_kv ARRAY <<<"k=v lines": loadgen -env output into an associative array.
# shellcheck disable=SC2034 # into refers to the caller's array
read_kv() {
  local -n into=$1
  local k v
  while IFS='=' read -r k v; do
    if [[ -n $k ]]; then into["$k"]=$v; fi
  done
  return 0
}

# ge A B: A >= B (floats).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, v }'; }
mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1e6 }'; }

# build_tools: bin/loadgen, and bin/petbreed unless PETBREED_BIN is set;
# sets loadgen and petbreed to their paths.
build_tools() {
  say "building bin/loadgen"
  go build -o bin/loadgen ./cmd/loadgen || die "building bin/loadgen failed"
  loadgen=$PWD/bin/loadgen
  if [[ -n ${PETBREED_BIN:-} ]]; then
    petbreed=$PETBREED_BIN
    return 0
  fi
  say "building bin/petbreed"
  local version
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
  CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=$version" -o bin/petbreed ./cmd/petbreed ||
    die "building bin/petbreed failed (make deps onnxruntime installs what it needs)"
  petbreed=$PWD/bin/petbreed
}

# bench_image SRC: SRC as a 500x375 JPEG at quality 90 in $tmp; sets image.
bench_image() {
  [[ -f $1 ]] || die "no $1 (set SHARED to the shared folder)"
  image=$tmp/$(basename "$1" .jpg)_q90.jpg
  "$petbreed" resize "$1" "$image" --width 500 --height 375 --quality 90 2>/dev/null ||
    die "petbreed resize failed to make the benchmark image"
}
