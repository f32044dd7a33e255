#!/usr/bin/env bash
# Soak `petbreed serve` on loopback (issue 8): a real 500x375 JPEG at
# concurrency 64 for 20,000 requests, bounded in time, counting 503s
# (overload, by design) apart from every other error, and the server's RSS
# after a warm-up and after the soak. Goal: no error but 503, RSS growth
# under 10%. Prints a Markdown table on stdout (progress on stderr); exits 1
# when a goal is missed.
#
# Environment (all optional):
#   MODEL        model file or URI (default: a champion trained here by
#                `petbreed pipeline` on pets-3breeds into a temporary store)
#   SHARED       the shared folder (default: ../shared beside the repository)
#   C, N, WARMUP concurrency (64), measured requests (20000), warm-up requests (2000)
#   MAX_TIME     the soak stops after this long whatever N (default 600s)
#   SERVE_ARGS   extra arguments for `petbreed serve` (default "--queue 128": above the
#                concurrency, so that every request does the real work; with the
#                default queue of 48 a closed-loop client at c=64 spends most of its
#                requests on instant 503s, which says little about the server)
#   PETBREED_BIN use this petbreed binary instead of building bin/petbreed
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SHARED=${SHARED:-$(cd "$root/.." && pwd)/shared}
assets=$SHARED/assets
C=${C:-64}
N=${N:-20000}
WARMUP=${WARMUP:-2000}
MAX_TIME=${MAX_TIME:-600s}
SERVE_ARGS=${SERVE_ARGS---queue 128}

tmp=$(mktemp -d -t soak.XXXXXX)
log=$tmp/serve.log
# shellcheck source=scripts/serve-lib.sh
. "$root/scripts/serve-lib.sh"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_tools
bench_image "$assets/pets-3breeds/images/Abyssinian_105.jpg"

export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-$tmp/mlruns}
if [[ -n ${MODEL:-} ]]; then
  model=$MODEL
else
  say "training a champion on pets-3breeds into $MLFLOW_TRACKING_URI"
  "$petbreed" pipeline --data "$assets/pets-3breeds" --backbone "$assets/backbone/mobilenetv2-12-int8.onnx" \
    >"$tmp/pipeline.log" 2>&1 || {
    tail -n 20 "$tmp/pipeline.log" >&2
    die "the pipeline failed"
  }
  model=models:/pet-breed@champion
fi

port=$("$loadgen" -free-port)
base=http://127.0.0.1:$port
say "starting: $petbreed serve --model $model --addr 127.0.0.1:$port $SERVE_ARGS"
# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
"$petbreed" serve --model "$model" --addr "127.0.0.1:$port" $SERVE_ARGS >"$log" 2>&1 &
pid=$!
capture "$tmp/ready" "$loadgen" -wait "$base/api/health" -pid "$pid" -wait-timeout 60s || {
  show_log
  die "the server did not become ready"
}

declare -A soak=() before=() after=()
say "warm-up: $WARMUP requests at concurrency $C"
capture "$tmp/warm" "$loadgen" -url "$base/api/predict" -image "$image" -c "$C" -n "$WARMUP" -d "$MAX_TIME" -env || {
  show_log
  die "loadgen failed during the warm-up"
}
"$loadgen" -rss "$pid" -env >"$tmp/before"
read_kv before <"$tmp/before"

say "soak: $N requests at concurrency $C (at most $MAX_TIME)"
capture "$tmp/soak" "$loadgen" -url "$base/api/predict" -image "$image" -c "$C" -n "$N" -d "$MAX_TIME" -pid "$pid" -env || {
  show_log
  die "loadgen failed during the soak"
}
read_kv soak <"$tmp/soak"
"$loadgen" -rss "$pid" -env >"$tmp/after"
read_kv after <"$tmp/after"

say "stopping the server (SIGTERM)"
stop_server 30

# errors_by_status is "503:12,500:1"-like; 503s are overload answers.
count503() { tr ',' '\n' <<<"${1:-}" | awk -F: '$1 == 503 { n += $2 } END { print n + 0 }'; }
n503=$(count503 "${soak[errors_by_status]:-}")
other=$((soak[errors] - n503))
successes=$((soak[requests] - soak[errors]))
first_other=""
((other > 0)) && first_other=" (first error: ${soak[first_error]:-})"
rss0=${before[rss_bytes]}
rss1=${after[rss_bytes]}
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.1f", 100 * (b - a) / a }')
errors_ok=0 growth_ok=0 done_ok=0 shutdown_ok=0
((other == 0)) && errors_ok=1
ge 10 "$growth" && growth_ok=1
((soak[requests] >= N)) && done_ok=1
[[ $shutdown_s != timeout && $shutdown_rc == 0 ]] && shutdown_ok=1
verdict() { if [[ $1 == 1 ]]; then echo ok; else echo "**missed**"; fi; }

cat <<TABLE
### Soak: \`petbreed serve\` at concurrency $C

$(date -u '+%Y-%m-%d %H:%M UTC'). CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs.
Model: \`$model\`. Image: Abyssinian_105.jpg as a 500x375 JPEG at quality 90, raw body to \`/api/predict\`.
Command: \`make soak\` (scripts/soak.sh: C=$C N=$N WARMUP=$WARMUP MAX_TIME=$MAX_TIME${SERVE_ARGS:+ SERVE_ARGS="$SERVE_ARGS"}).

| measure | value | goal | |
|---|---|---|---|
| requests completed | ${soak[requests]} in $(fmt "${soak[elapsed_s]}" 1) s | $N | $(verdict "$done_ok") |
| throughput | $(fmt "${soak[throughput]}" 1) images/s | | |
| p50 / p99 latency | $(fmt "${soak[p50_ms]}" 2) / $(fmt "${soak[p99_ms]}" 2) ms | | |
| successful | $successes | | |
| 503 (overload, by design) | $n503 | | |
| other errors | $other$first_other | 0 | $(verdict "$errors_ok") |
| RSS after $WARMUP warm-up requests | $(mb "$rss0") MB | | |
| RSS after the soak | $(mb "$rss1") MB ($growth%) | growth < 10% | $(verdict "$growth_ok") |
| peak RSS (VmHWM) | $(mb "${after[peak_rss_bytes]}") MB | | |
| SIGTERM | exit ${shutdown_rc} after ${shutdown_s} s | exits 0 | $(verdict "$shutdown_ok") |
TABLE

if ((errors_ok + growth_ok + done_ok + shutdown_ok < 4)); then
  show_log
  exit 1
fi
