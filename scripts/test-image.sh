#!/usr/bin/env bash
# Test the container image for real with podman (make test-image):
#   - the image: non-root user 65532, entrypoint and settings, OCI labels, no
#     shell, compiler, Go toolchain or libjpeg headers inside;
#   - a model trained by the image itself (petbreed pipeline, read-only root,
#     the store a volume at /data), then served from that store mounted
#     read-only (models:/pet-breed@champion), and the same model baked into an
#     image (MODEL=...: /models/model.onnx);
#   - each run with --read-only --cap-drop=ALL --user 65532 on loopback:
#     /api/health, /v2/health/ready, the image's HEALTHCHECK command, a real
#     JPEG to /api/predict (Bengal_1.jpg is a Bengal), the server's uid seen
#     from the host, and SIGTERM -> exit 0 within the drain time.
# It prints the timings and the image's size. Containers and the test image
# are removed at the end, whatever happens.
#
# Environment: IMAGE (default localhost/petbreed:dev, built by make image),
# PETBREED_ASSETS, CONTAINERS_CONF (default deploy/containers.conf),
# TEST_IMAGE_CACHE (the feature cache kept between runs, default
# .cache/test-image; features are content-keyed, so reuse is safe).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers.conf}
IMAGE=${IMAGE:-localhost/petbreed:dev}
BAKED=${IMAGE%:*}:test-baked-$$
assets=${PETBREED_ASSETS:-$root/../shared/assets}
cache=${TEST_IMAGE_CACHE:-$root/.cache/test-image}
drain=10 # seconds podman stop waits before SIGKILL

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}'; }
# podman's own complaints (here: no systemd for healthcheck timers) are kept
# in podman.err and shown only when a check fails.
fail() {
  echo "test-image: FAIL: $*" >&2
  [ -s "${tmp:-/nonexistent}/podman.err" ] && grep -v 'systemd' "$tmp/podman.err" >&2
  exit 1
}
pass() { echo "test-image: ok: $*"; }
# has PATTERN: grep a pipe's whole output (grep -q would stop reading early and
# fail the pipe's writer with SIGPIPE, under pipefail).
has() { grep "$@" >/dev/null; }

podman image exists "$IMAGE" || fail "no image $IMAGE (run make image)"
[ -d "$assets/pets-3breeds" ] || fail "no assets at $assets (set PETBREED_ASSETS)"

tmp=$(mktemp -d)
names=()
cleanup() {
  local n
  for n in "${names[@]}"; do podman rm -f -t 0 "$n" >/dev/null 2>&1 || true; done
  podman rm -f -t 0 "pb-test-$$-nomodel" "pb-test-$$-train" >/dev/null 2>&1 || true
  if podman image exists "$BAKED"; then podman rmi -f "$BAKED" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The hardening every run gets.
secure=(--read-only --cap-drop=ALL --security-opt=no-new-privileges --user 65532:65532 --memory 768m --pids-limit 256)

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "no free loopback port"
}

# wait_healthy NAME PORT: poll /api/health until 200 (30 s at most).
wait_healthy() {
  local name=$1 port=$2 t0
  t0=$(now)
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/api/health" 2>/dev/null; then
      echo "test-image: $name: run to healthy in $(since "$t0")"
      return
    fi
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] ||
      { podman logs "$name" >&2; fail "$name exited before it was healthy"; }
    sleep 0.1
  done
  podman logs "$name" >&2
  fail "$name: not healthy after 30 s"
}

# check_server NAME PORT: the probes, a prediction, the process's uid, SIGTERM.
check_server() {
  local name=$1 port=$2 url=http://127.0.0.1:$2 code answer pid uids t0 exit
  code=$(curl -sS -o "$tmp/ready" -w '%{http_code}' --max-time 5 "$url/v2/health/ready")
  [ "$code" = 200 ] || fail "$name: /v2/health/ready answered $code: $(cat "$tmp/ready")"
  curl -fsS --max-time 5 "$url/api/health" | has '"status":"healthy"' || fail "$name: /api/health is not healthy"
  pass "$name: /api/health and /v2/health/ready answer 200"

  # The image's own HEALTHCHECK command, run in the container (podman runs
  # it on demand; no timer runs it here).
  podman healthcheck run "$name" >/dev/null || fail "$name: podman healthcheck run failed"
  pass "$name: the HEALTHCHECK command (petbreed healthcheck) passes"

  answer=$(curl -fsS --max-time 30 -F "file=@$assets/pets-3breeds/images/Bengal_1.jpg" "$url/api/predict") ||
    fail "$name: POST /api/predict failed"
  echo "$answer" | has '"predicted_breed":"Bengal"' || fail "$name: Bengal_1.jpg: $answer"
  pass "$name: Bengal_1.jpg is a Bengal ($(echo "$answer" | grep -o '"confidence":[0-9.e-]*'))"
  code=$(curl -sS -o "$tmp/bad" -w '%{http_code}' --max-time 10 --data-binary 'not an image' "$url/api/predict")
  if [ "${code:0:1}" != 4 ] || ! grep -q '"error"' "$tmp/bad"; then
    fail "$name: a non-image answered $code: $(cat "$tmp/bad")"
  fi
  pass "$name: a non-image gets $code with a JSON error"

  # Seen from the host: the server is the container's only process and runs
  # as 65532 (real, effective, saved and filesystem ids), with no capabilities.
  pid=$(podman inspect -f '{{.State.Pid}}' "$name")
  uids=$(awk '/^Uid:/{print $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$uids" = "65532 65532 65532 65532" ] || fail "$name: server uids are $uids"
  grep -q '^CapEff:[[:space:]]*0*$' "/proc/$pid/status" || fail "$name: $(grep CapEff "/proc/$pid/status")"
  [ "$(podman top "$name" pid | tail -n +2 | wc -l)" = 1 ] || fail "$name: more than one process: $(podman top "$name")"
  pass "$name: one process, uid 65532, no capabilities"

  # SIGTERM, then SIGKILL after the drain time: exit 0 (not 137) means the
  # server stopped by itself in time; its log says how long it took.
  t0=$(now)
  podman stop -t "$drain" "$name" >/dev/null 2>>"$tmp/podman.err"
  exit=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  podman logs "$name" >"$tmp/$name.log" 2>&1
  [ "$exit" = 0 ] || { tail -20 "$tmp/$name.log" >&2; fail "$name: exit code $exit after SIGTERM"; }
  t1=$(sed -n 's/^{"time":"\([^"]*\)".*"msg":"shutting down.*/\1/p' "$tmp/$name.log" | head -1)
  t2=$(sed -n 's/^{"time":"\([^"]*\)".*"msg":"stopped".*/\1/p' "$tmp/$name.log" | tail -1)
  if [ -z "$t1" ] || [ -z "$t2" ]; then
    tail -5 "$tmp/$name.log" >&2
    fail "$name: no shutting down/stopped in its log"
  fi
  pass "$name: SIGTERM -> exit 0; the server drained in $(awk -v a="$(date -d "$t1" +%s.%N)" -v b="$(date -d "$t2" +%s.%N)" 'BEGIN{printf "%.3f s", b-a}'), podman stop took $(since "$t0")"
}

# --- the image itself
echo "test-image: $IMAGE, $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}') uncompressed"
[ "$(podman image inspect -f '{{.Config.User}}' "$IMAGE")" = 65532:65532 ] || fail "image user is not 65532:65532"
podman image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE" | has -F '["/usr/local/bin/petbreed"] ["serve"]' ||
  fail "entrypoint: $(podman image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")"
for l in version revision source; do
  v=$(podman image inspect -f "{{index .Labels \"org.opencontainers.image.$l\"}}" "$IMAGE")
  [ -n "$v" ] || [ "$l" = source ] || fail "label org.opencontainers.image.$l is empty"
done
podman image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE" | has healthcheck || fail "no HEALTHCHECK (built without --format docker?)"
podman create --name "pb-test-$$-files" "$IMAGE" >/dev/null 2>>"$tmp/podman.err"
names+=("pb-test-$$-files")
podman export "pb-test-$$-files" | tar -t >"$tmp/files"
for f in usr/local/bin/petbreed usr/local/bin/libonnxruntime.so.1 etc/ssl/certs/ca-certificates.crt; do
  grep -qx "$f" "$tmp/files" || fail "$f is missing from the image"
done
if grep -E '(^|/)(gcc|cc|c\+\+|g\+\+|ld|go|gofmt|sh|bash|dash|apt|apt-get|dpkg|su|sudo)$|(^|/)include/|jpeglib\.h|(^|/)pkg/mod/' "$tmp/files"; then
  fail "the image holds build tools, a shell or headers (above)"
fi
grep -q 'libjpeg\.so\.62' "$tmp/files" || fail "libjpeg.so.62 is missing"
pass "image: user 65532, entrypoint petbreed serve, labels, $(wc -l <"$tmp/files") files, no shell, compiler, Go or headers"

# A model that cannot be loaded: exit 1 at once, saying why.
code=0
podman run --rm --name "pb-test-$$-nomodel" "${secure[@]}" --network=none -e PETBREED_MODEL=/models/none.onnx \
  "$IMAGE" >"$tmp/nomodel.log" 2>&1 || code=$?
if [ "$code" != 1 ] || ! grep -q 'load model /models/none.onnx' "$tmp/nomodel.log"; then
  fail "a missing model: exit $code: $(tail -3 "$tmp/nomodel.log")"
fi
pass "a missing model: exit 1, $(grep -m1 'load model' "$tmp/nomodel.log")"

# --- train a model with the image itself, into a store volume
mkdir -p "$tmp/store" "$cache"
chown 65532:65532 "$tmp/store" "$cache"
t0=$(now)
podman run --rm --name "pb-test-$$-train" "${secure[@]}" --network=none \
  -v "$tmp/store:/data" -v "$cache:/cache" -v "$assets:/assets:ro" "$IMAGE" \
  pipeline --data /assets/pets-3breeds --backbone /assets/backbone/mobilenetv2-12-int8.onnx >"$tmp/train.log" 2>&1 ||
  { tail -20 "$tmp/train.log" >&2; fail "petbreed pipeline in the image failed"; }
model=$(sed -n 's/^model file: //p' "$tmp/train.log")
case "$model" in /data/mlruns/*) ;; *) fail "pipeline printed no model under /data/mlruns: $(tail -5 "$tmp/train.log")" ;; esac
pass "pipeline in the image (read-only root, store at /data): $(grep -m1 '^test accuracy' "$tmp/train.log"), $(since "$t0")"
host_model=$tmp/store${model#/data}

# --- serve from the store, mounted read-only
port=$(free_port)
podman run -d --name "pb-test-$$-store" "${secure[@]}" -p "127.0.0.1:$port:8080" \
  -v "$tmp/store:/data:ro" "$IMAGE" >/dev/null 2>>"$tmp/podman.err"
names+=("pb-test-$$-store")
wait_healthy "pb-test-$$-store" "$port"
curl -fsS "http://127.0.0.1:$port/api/health" | has '"pet-breed' || fail "store: the model served is not pet-breed"
check_server "pb-test-$$-store" "$port"

# --- the model baked in
t0=$(now)
MODEL=$host_model IMAGE=$BAKED scripts/image.sh 2>"$tmp/baked.log" || { cat "$tmp/baked.log" >&2; fail "MODEL=... make image failed"; }
echo "test-image: baked image built in $(since "$t0")"
podman image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BAKED" | has -x 'PETBREED_MODEL=/models/model.onnx' ||
  fail "baked image: PETBREED_MODEL is not /models/model.onnx"
port=$(free_port)
podman run -d --name "pb-test-$$-baked" "${secure[@]}" -p "127.0.0.1:$port:8080" "$BAKED" >/dev/null 2>>"$tmp/podman.err"
names+=("pb-test-$$-baked")
wait_healthy "pb-test-$$-baked" "$port"
check_server "pb-test-$$-baked" "$port"

echo "test-image: PASS"
