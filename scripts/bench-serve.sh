#!/usr/bin/env bash
# Benchmark `petbreed serve` as issue 4's "Speed and memory" asks, on loopback:
# start to ready, concurrency 1 and 32 with a 500x375 JPEG at quality 90,
# errors, the server's peak RSS, graceful shutdown; and the model alone at
# batch 32 in the same run, to compare. Prints a Markdown table on stdout
# (progress on stderr), e.g. `scripts/bench-serve.sh | tee bench.md`.
#
# Environment (all optional):
#   MODEL         model file or URI (default: models:/pet-breed@champion if it resolves
#                 through $MLFLOW_TRACKING_URI, else the shared int8 MobileNetV2 backbone)
#   LABELS        a labels file for `petbreed serve --labels` (default: the backbone's
#                 ImageNet labels when the backbone is chosen by default; else none)
#   SHARED        the shared folder (default: ../shared beside the repository)
#   N1, WARMUP1   requests and warm-up at concurrency 1 (300, 50)
#   C, N32, WARMUP32  the high concurrency (32), its requests (3000) and warm-up (64)
#   SERVE_ARGS    extra arguments for `petbreed serve`, e.g. "--max-batch 32 --max-delay 2ms"
#   MODEL_ALONE   1 (default): also measure the model alone at batch 32; 0: skip
#   STRICT        1: exit 1 when a goal is missed (errors or a failed shutdown always do)
#   PETBREED_BIN  use this petbreed binary instead of building bin/petbreed
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and printf with a decimal point

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SHARED=${SHARED:-$(cd "$root/.." && pwd)/shared}
assets=$SHARED/assets
N1=${N1:-300}
WARMUP1=${WARMUP1:-50}
C=${C:-32}
N32=${N32:-3000}
WARMUP32=${WARMUP32:-64}
SERVE_ARGS=${SERVE_ARGS:-}
MODEL_ALONE=${MODEL_ALONE:-1}
STRICT=${STRICT:-0}

tmp=$(mktemp -d -t bench-serve.XXXXXX)
log=$tmp/serve.log
# shellcheck source=scripts/serve-lib.sh
. "$root/scripts/serve-lib.sh"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

loadavg=$(cut -d' ' -f1 /proc/loadavg)

# --- build -------------------------------------------------------------------
build_tools

if ! "$petbreed" serve --help >"$tmp/serve-help" 2>&1; then
  sed 's/^/  | /' "$tmp/serve-help" >&2
  die "\`petbreed serve\` does not exist in this build ($petbreed): the server (issue 4) is not there yet, nothing to benchmark"
fi

# --- the image and the model -------------------------------------------------
bench_image "$assets/pets-3breeds/images/Abyssinian_105.jpg"
image_kb=$(($(stat -c %s "$image") / 1000))

labels_args=()
if [[ -n ${LABELS:-} ]]; then
  labels_args=(--labels "$LABELS")
fi
if [[ -n ${MODEL:-} ]]; then
  model=$MODEL
elif "$petbreed" inspect models:/pet-breed@champion >/dev/null 2>&1; then
  model=models:/pet-breed@champion
else
  model=$assets/backbone/mobilenetv2-12-int8.onnx
  [[ -f $model ]] || die "no champion in the tracking store and no shared backbone at $model: set MODEL"
  say "no models:/pet-breed@champion in the tracking store: using the shared backbone"
  if [[ -z ${LABELS:-} ]] && grep -q -- '--labels' "$tmp/serve-help"; then
    labels_args=(--labels "$assets/backbone/imagenet_labels.txt")
  fi
fi
model_path=$("$petbreed" inspect --json "$model" 2>/dev/null | sed -n 's/^  "path": "\(.*\)",$/\1/p' | head -n 1) || true
model_desc=$model
[[ -n $model_path && $model_path != "$model" ]] && model_desc="$model ($model_path)"

# --- the model alone, before the server runs ---------------------------------
alone=""
if [[ $MODEL_ALONE == 1 ]]; then
  say "model alone: batch 32, shared int8 backbone (go test -bench RunBatch32 ./internal/onnxrt/)"
  if capture "$tmp/alone" go test -run '^$' -bench 'RunBatch32$' -benchtime 20x -count 1 ./internal/onnxrt/; then
    alone=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "images/s") print $(i - 1) }' "$tmp/alone" | head -n 1)
  fi
  if [[ -z $alone ]]; then
    say "could not measure the model alone:"
    sed 's/^/  | /' "$tmp/alone" >&2
  fi
fi

# --- start the server --------------------------------------------------------
port=$("$loadgen" -free-port)
base=http://127.0.0.1:$port
# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
say "starting: $petbreed serve --model $model --addr 127.0.0.1:$port ${labels_args[*]} $SERVE_ARGS"
t0=$EPOCHREALTIME
# shellcheck disable=SC2086
"$petbreed" serve --model "$model" --addr "127.0.0.1:$port" "${labels_args[@]}" $SERVE_ARGS >"$log" 2>&1 &
pid=$!
if ! capture "$tmp/ready" "$loadgen" -wait "$base/api/health" -since "$t0" -pid "$pid" -poll 2ms -wait-timeout 60s; then
  show_log
  die "the server did not become ready"
fi
ready_s=$(<"$tmp/ready")
say "ready in ${ready_s}s (pid $pid)"

# One request first, to fail early and clearly if predict does not work.
declare -A probe=()
capture "$tmp/probe" "$loadgen" -url "$base/api/predict" -image "$image" -n 1 -env || true
read_kv probe <"$tmp/probe"
if [[ ${probe[errors]:-1} != 0 ]]; then
  show_log
  die "POST /api/predict failed: ${probe[first_error]:-no answer}"
fi

# --- load ----------------------------------------------------------------------
declare -A c1=() cN=()
say "concurrency 1: $N1 requests after $WARMUP1 warm-up"
capture "$tmp/c1" "$loadgen" -url "$base/api/predict" -image "$image" -c 1 -n "$N1" -warmup "$WARMUP1" -pid "$pid" -env || {
  show_log
  die "loadgen failed at concurrency 1"
}
read_kv c1 <"$tmp/c1"
say "concurrency $C: $N32 requests after $WARMUP32 warm-up"
capture "$tmp/cN" "$loadgen" -url "$base/api/predict" -image "$image" -c "$C" -n "$N32" -warmup "$WARMUP32" -pid "$pid" -env || {
  show_log
  die "loadgen failed at concurrency $C"
}
read_kv cN <"$tmp/cN"
declare -A mem=()
"$loadgen" -rss "$pid" -env >"$tmp/mem" || true
read_kv mem <"$tmp/mem"

say "stopping the server (SIGTERM)"
stop_server 30
if [[ $shutdown_s == timeout ]]; then
  shutdown="**killed**: still running 30 s after SIGTERM"
  shutdown_ok=0
elif [[ $shutdown_rc != 0 ]]; then
  shutdown="**exit $shutdown_rc** after ${shutdown_s} s"
  shutdown_ok=0
else
  shutdown="exit 0 after ${shutdown_s} s"
  shutdown_ok=1
fi

# --- report --------------------------------------------------------------------
# ok CMD...: 1 if CMD succeeds, else 0.
ok() { if "$@"; then echo 1; else echo 0; fi; }
verdict() { if [[ $1 == 1 ]]; then echo ok; else echo "**missed**"; fi; }

errors=$((c1[errors] + cN[errors]))
total=$((c1[requests] + cN[requests]))
sent=$((cN[requests] + WARMUP32))
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx_vnni' | tr '\n' ' ' | sed 's/ $//')
server_cpu=$(awk -v s="${cN[server_cpu_s]:-0}" -v n="$sent" 'BEGIN { printf "%.2f", s * 1000 / n }')
loadgen_cpu=$(awk -v s="${cN[loadgen_cpu_s]:-0}" -v n="$sent" 'BEGIN { printf "%.3f", s * 1000 / n }')

tput=${cN[throughput]}
if [[ -n $alone ]]; then
  half=$(awk -v a="$alone" 'BEGIN { printf "%.0f", a / 2 }')
  tput_goal="≥ 200 and ≥ $half (half the model alone)"
  if ge "$tput" 200 && ge "$tput" "$half"; then tput_ok=1; else tput_ok=0; fi
  ratio=" ($(awk -v t="$tput" -v a="$alone" 'BEGIN { printf "%.0f", 100 * t / a }')% of the model alone)"
else
  tput_goal="≥ 200 (and ≥ half the model alone: not measured)"
  tput_ok=$(ok ge "$tput" 200)
  ratio=""
fi
alone_desc="not measured"
[[ -z $alone ]] || alone_desc="$alone images/s"
petbreed_version=$("$petbreed" version 2>/dev/null) || true
petbreed_version=${petbreed_version%%$'\n'*}
ready_ok=$(ok ge 0.5 "$ready_s")
p50_ok=$(ok ge 8 "${c1[p50_ms]}")
errors_ok=$(ok test "$errors" -eq 0)
peak=${mem[peak_rss_bytes]:-}
if [[ -n $peak ]]; then
  peak_mb="$(mb "$peak") MB"
  rss_ok=$(ok ge 150 "$(mb "$peak")")
else
  peak_mb="unknown (the server had exited)"
  rss_ok=0
fi
missed=$((5 - ready_ok - p50_ok - tput_ok - errors_ok - rss_ok))

cat <<EOF
### \`petbreed serve\` on loopback

$(date -u '+%Y-%m-%d %H:%M UTC'). CPU: ${cpu_model:-unknown}, $(nproc) CPUs${cpu_flags:+ ($cpu_flags)};
load average ${loadavg} before the run (other work on the machine skews every figure).
petbreed: ${petbreed_version:-unknown}. Model: \`$model_desc\`.
Image: Abyssinian_105.jpg as a 500x375 JPEG at quality 90, ${image_kb} KB, raw body to \`/api/predict\`.
Server flags: \`--addr 127.0.0.1:PORT${labels_args[*]:+ ${labels_args[*]}}${SERVE_ARGS:+ $SERVE_ARGS}\` (defaults otherwise).
Load: \`bin/loadgen\` (closed loop, keep-alive), concurrency 1: ${c1[requests]} requests after ${WARMUP1} warm-up;
concurrency $C: ${cN[requests]} requests after ${WARMUP32} warm-up. Latencies are of successful requests.

| measure | value | goal | |
|---|---|---|---|
| start to ready (exec to first 200 on /api/health) | $(fmt "$ready_s" 3) s | ≤ 0.5 s | $(verdict "$ready_ok") |
| c=1 p50 | $(fmt "${c1[p50_ms]}" 2) ms | ≤ 8 ms | $(verdict "$p50_ok") |
| c=1 p90 | $(fmt "${c1[p90_ms]}" 2) ms | | |
| c=1 p99 | $(fmt "${c1[p99_ms]}" 2) ms | | |
| c=1 images/s | $(fmt "${c1[throughput]}" 1) | | |
| c=$C p50 | $(fmt "${cN[p50_ms]}" 2) ms | | |
| c=$C p99 | $(fmt "${cN[p99_ms]}" 2) ms | | |
| c=$C images/s | $(fmt "$tput" 1)$ratio | $tput_goal | $(verdict "$tput_ok") |
| model alone, batch 32 (shared int8 backbone) | $alone_desc | | |
| errors | $errors of $total${c1[errors_by_status]:+ (c=1: ${c1[errors_by_status]})}${cN[errors_by_status]:+ (c=$C: ${cN[errors_by_status]})} | 0 | $(verdict "$errors_ok") |
| peak RSS (VmHWM, after the load) | $peak_mb | ≤ 150 MB | $(verdict "$rss_ok") |
| RSS max sampled during c=$C | $(mb "${cN[server_rss_max_bytes]:-0}") MB | | |
| server CPU at c=$C (warm-up included) | $server_cpu ms/image | | |
| loadgen CPU at c=$C (warm-up included) | $loadgen_cpu ms/request | | |
| SIGTERM | $shutdown | exits 0 | $(verdict "$shutdown_ok") |
EOF
if [[ -n ${cN[first_error]:-}${c1[first_error]:-} ]]; then
  echo
  echo "First error: \`${c1[first_error]:-${cN[first_error]}}\`"
fi

if ((errors > 0)) || [[ $shutdown_ok != 1 ]]; then
  show_log
  exit 1
fi
if [[ $STRICT == 1 ]] && ((missed > 0)); then
  say "$missed goal(s) missed"
  exit 1
fi
