#!/usr/bin/env bash
# Benchmark `petbreed serve` as issue 4's "Speed and memory" asks, on loopback:
# start to ready, concurrency 1 and 32 with a 500x375 JPEG at quality 90,
# errors, the server's peak RSS, graceful shutdown; and the model alone at
# batch 32 in the same run, to compare. Prints Markdown tables on stdout
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
#
# Several models in one server (issue 12), after the rows above, each on a fresh
# server at concurrency $C with MODELS_N requests after WARMUP32 warm-up, all
# rows in turn MODELS_ROUNDS times: (1) the champion alone, (2) a 50/50 split
# with a second version (no unit header: weighted random), (3) the champion
# with the second version as a full shadow (copies answered and dropped, from
# /metrics), (4) the same with bounds that drop no copy at c=$C, and (1') (2')
# (3') (4') with --share-backbone=false when `petbreed serve` has that flag; the
# shadow's cost is 1 - throughput(3) / throughput(1) (goal < 10%).
#   MODELS        1 (default): measure these rows; 0: skip them
#   MODELS_N, MODELS_ROUNDS  requests per row and round (600), rounds (4: two let one noisy
#                 round move a row by more than the 10% the shadow may cost)
#   CHALLENGER    the second version: a file or URI (default: models:/pet-breed@challenger
#                 if it resolves to another file than the champion; else one is trained,
#                 `petbreed train --seed CHALLENGER_SEED` on the champion's dataset and
#                 backbone, into a temporary tracking store removed at the end: the
#                 champion's store and aliases are not touched)
#   CHALLENGER_SEED  seed of that training (7)
#   DATA, BACKBONE   the dataset and backbone file to train it on (default: the champion
#                 run's `dataset` param, and the file among $SHARED/assets/backbone/*.onnx
#                 and models/*.onnx whose sha256 is the champion's petbreed.backbone_sha256)
# The rows need a trained champion (`make demo`); without one they are skipped.
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
MODELS=${MODELS:-1}
MODELS_N=${MODELS_N:-600}
MODELS_ROUNDS=${MODELS_ROUNDS:-4}
CHALLENGER_SEED=${CHALLENGER_SEED:-7}

for v in MODELS_N MODELS_ROUNDS CHALLENGER_SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench-serve: $v=${!v}: not a whole number" >&2; exit 2; }
done
((MODELS_N > 0 && MODELS_ROUNDS > 0)) || { echo "bench-serve: MODELS_N and MODELS_ROUNDS must be at least 1" >&2; exit 2; }

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

# --- the second version, for the several-models rows (issue 12) ---------------
# json_field NAME <JSON: the first "NAME": "value" of `petbreed ... --json` output.
json_field() { sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n 1; }
models_skip="" # why the rows are skipped, when they are
challenger="" challenger_desc="" share_flag=0
if [[ $MODELS != 1 ]]; then
  models_skip="MODELS=$MODELS"
elif [[ -z ${MODEL:-} && $model != models:/pet-breed@champion ]]; then
  models_skip="no models:/pet-breed@champion in the tracking store (\`make demo\` trains one)"
fi
if [[ -z $models_skip ]]; then
  "$petbreed" inspect --json "$model" >"$tmp/champion.json" 2>&1 || true
  champion_sha=$(json_field sha256 <"$tmp/champion.json")
  champion_backbone=$(json_field petbreed.backbone_sha256 <"$tmp/champion.json")
  champion_run=$(json_field petbreed.run_id <"$tmp/champion.json")
  if [[ -z $champion_backbone ]]; then
    models_skip="$model is not a petbreed-trained model (no petbreed.backbone_sha256 in its metadata)"
  fi
fi
if [[ -z $models_skip && -n ${CHALLENGER:-} ]]; then
  challenger=$CHALLENGER
  challenger_desc="\`$CHALLENGER\` (CHALLENGER)"
elif [[ -z $models_skip ]] && "$petbreed" inspect --json models:/pet-breed@challenger >"$tmp/challenger.json" 2>/dev/null &&
  [[ $(json_field sha256 <"$tmp/challenger.json") != "$champion_sha" ]]; then
  challenger=models:/pet-breed@challenger
  challenger_desc="\`models:/pet-breed@challenger\`"
elif [[ -z $models_skip ]]; then
  # Train one: the champion's dataset and backbone, another seed, a temporary store.
  data=${DATA:-}
  if [[ -z $data && -n $champion_run ]]; then
    "$petbreed" runs --json >"$tmp/runs.json" 2>/dev/null || true
    data=$(awk -v id="\"ID\": \"$champion_run\"" 'index($0, id) { found = 1 }
      found && /^ *"dataset": "/ { sub(/^ *"dataset": "/, ""); sub(/",?$/, ""); print; exit }' "$tmp/runs.json")
  fi
  backbone=${BACKBONE:-}
  if [[ -z $backbone ]]; then
    for f in "$assets"/backbone/*.onnx models/*.onnx; do
      if [[ -f $f && $(sha256sum "$f" | cut -d' ' -f1) == "$champion_backbone" ]]; then
        backbone=$f
        break
      fi
    done
  fi
  if [[ -n ${DATA:-} && ! -d $DATA ]]; then
    die "DATA=$DATA is not a folder"
  elif [[ -n ${BACKBONE:-} && ! -f $BACKBONE ]]; then
    die "BACKBONE=$BACKBONE is not a file"
  elif [[ -z $data || ! -d $data ]]; then
    models_skip="no second version: the champion's dataset (${data:-its run ${champion_run:-unknown} not found}) is not a folder here; set DATA or CHALLENGER"
  elif [[ -z $backbone ]]; then
    models_skip="no second version: no backbone file with the champion's sha256 $champion_backbone; set BACKBONE or CHALLENGER"
  else
    say "training a second version: petbreed train --seed $CHALLENGER_SEED --data $data --backbone $backbone (a temporary store)"
    if capture "$tmp/train.json" "$petbreed" train --quiet --json --register --name bench-challenger \
      --seed "$CHALLENGER_SEED" --data "$data" --backbone "$backbone" --tracking "$tmp/challenger-store" 2>"$tmp/train.err"; then
      challenger=$(json_field model_path <"$tmp/train.json")
      challenger_desc="trained for this run: \`petbreed train --seed $CHALLENGER_SEED\` (Adam, 10 epochs) on \`$data\` with \`$(basename "$backbone")\`, in a temporary store"
    fi
    if [[ -z $challenger ]]; then
      sed 's/^/  | /' "$tmp/train.err" >&2
      die "training the second version failed (set CHALLENGER, or MODELS=0 to skip the several-models rows)"
    fi
  fi
fi
if [[ -z $models_skip ]]; then
  "$petbreed" inspect --json "$challenger" >"$tmp/challenger.json" 2>&1 || true
  challenger_backbone=$(json_field petbreed.backbone_sha256 <"$tmp/challenger.json")
  if [[ -z $challenger_backbone ]]; then
    sed 's/^/  | /' "$tmp/challenger.json" >&2
    die "the second version $challenger is not a petbreed-trained model (no petbreed.backbone_sha256 in its metadata)"
  elif [[ $challenger_backbone != "$champion_backbone" ]]; then
    challenger_desc+=" (**another backbone** than the champion's: nothing to share)"
  fi
  if grep -q -- '--share-backbone' "$tmp/serve-help"; then share_flag=1; fi
fi
[[ -z $models_skip ]] || say "skipping the several-models rows: $models_skip"

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

# --- several models in one server (issue 12) -----------------------------------
# metric_sum FILE NAME MODEL: the sum of NAME's samples labelled model="MODEL" in a /metrics text.
metric_sum() {
  awk -v n="$2{" -v m="model=\"$3\"" 'index($1, n) == 1 && index($1, m) { s += $NF } END { printf "%.0f", s }' "$1"
}
# Per row KEY, over the rounds: lists (one value a round) of throughput, p50,
# p99 and server CPU per image; sums of errors and of the requests each model
# answered (a: the champion, b: the challenger, or the shadow's answered
# copies; d: dropped copies; e: failed copies); the largest peak RSS; and
# row_fail[KEY], why a round has no figures.
declare -A row_tput=() row_p50=() row_p99=() row_cpu=() row_errors=() row_peak=() row_fail=()
declare -A row_a=() row_b=() row_d=() row_e=() row_shared=()
# snapshot BASE FILE KEY: BASE's /metrics into FILE, once a shadow row's copies
# in flight are answered, dropped or given up (at most 10 s); sets snap_n (the
# champion's answers), snap_c (the challenger's), snap_d and snap_e (the
# challenger's dropped and failed copies).
snapshot() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -fsS --max-time 5 "$1/metrics" >"$2" || true
    snap_n=$(metric_sum "$2" petbreed_model_requests_total champion)
    snap_c=$(metric_sum "$2" petbreed_model_requests_total challenger)
    snap_d=$(metric_sum "$2" petbreed_shadow_dropped_total challenger)
    snap_e=$(metric_sum "$2" petbreed_model_errors_total challenger)
    [[ $3 == shadow* ]] || return 0
    ((snap_c + snap_d + snap_e >= snap_n)) && return 0
    sleep 0.1
  done
}
# models_row KEY ARGS...: one round of row KEY: a fresh `petbreed serve ARGS`,
# loaded at concurrency $C with MODELS_N requests after WARMUP32 warm-up.
models_row() {
  local key=$1 port base i n0 n1 c0 c1 d0 d1 e0 e1 sent=$((MODELS_N + WARMUP32)) fail=""
  shift
  local -A r=() m=() p=()
  log=$tmp/serve-$key.log
  port=$("$loadgen" -free-port)
  base=http://127.0.0.1:$port
  # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
  say "row $key: $petbreed serve $* --addr 127.0.0.1:$port $SERVE_ARGS"
  # shellcheck disable=SC2086
  "$petbreed" serve "$@" --addr "127.0.0.1:$port" $SERVE_ARGS >"$log" 2>&1 &
  pid=$!
  if ! capture "$tmp/ready" "$loadgen" -wait "$base/api/health" -pid "$pid" -wait-timeout 60s; then
    fail="the server did not become ready"
  else
    # Every model loaded before the load starts (health answers once one is).
    for ((i = 0; i < 300; i++)); do
      curl -fsS --max-time 5 "$base/api/health" >"$tmp/health" 2>/dev/null || true
      grep -q '"state":"loading"' "$tmp/health" || break
      sleep 0.1
    done
    # How many of the models run on a shared backbone (/api/health's shared_backbone).
    row_shared[$key]=$(sed 's/.*"models":\[//' "$tmp/health" | grep -o '"shared_backbone":"[^"]*"' | wc -l || true)
    capture "$tmp/probe" "$loadgen" -url "$base/api/predict" -image "$image" -n 1 -env || true
    read_kv p <"$tmp/probe"
    [[ ${p[errors]:-1} == 0 ]] || fail="POST /api/predict failed: ${p[first_error]:-no answer}"
  fi
  if [[ -z $fail ]]; then
    snapshot "$base" "$tmp/m0" "$key"
    n0=$snap_n c0=$snap_c d0=$snap_d e0=$snap_e
    if capture "$tmp/row" "$loadgen" -url "$base/api/predict" -image "$image" -c "$C" -n "$MODELS_N" -warmup "$WARMUP32" -pid "$pid" -env; then
      read_kv r <"$tmp/row"
      snapshot "$base" "$tmp/m1" "$key"
      n1=$snap_n c1=$snap_c d1=$snap_d e1=$snap_e
      "$loadgen" -rss "$pid" -env >"$tmp/mem" || true
      read_kv m <"$tmp/mem"
      row_tput[$key]+="${r[throughput]} "
      row_p50[$key]+="${r[p50_ms]} "
      row_p99[$key]+="${r[p99_ms]} "
      row_cpu[$key]+="$(awk -v s="${r[server_cpu_s]:-0}" -v n="$sent" 'BEGIN { printf "%.2f", s * 1000 / n }') "
      row_errors[$key]=$((${row_errors[$key]:-0} + r[errors]))
      ((r[errors] == 0)) || fail="${r[errors]} errors${r[errors_by_status]:+ (${r[errors_by_status]})}: ${r[first_error]:-}"
      if ((${m[peak_rss_bytes]:-0} > ${row_peak[$key]:-0})); then row_peak[$key]=${m[peak_rss_bytes]}; fi
      row_a[$key]=$((${row_a[$key]:-0} + n1 - n0))
      row_b[$key]=$((${row_b[$key]:-0} + c1 - c0))
      row_d[$key]=$((${row_d[$key]:-0} + d1 - d0))
      row_e[$key]=$((${row_e[$key]:-0} + e1 - e0))
    else
      fail="loadgen failed"
    fi
  fi
  if [[ -n $fail ]]; then
    say "row $key: $fail"
    show_log
  fi
  stop_server 30
  if [[ $shutdown_s == timeout || $shutdown_rc != 0 ]]; then
    fail+="${fail:+; }SIGTERM: ${shutdown_s} s, exit ${shutdown_rc}"
  fi
  [[ -z $fail ]] || row_fail[$key]+="${row_fail[$key]:+; }$fail"
}

# The rows, MODELS_ROUNDS times in turn, each round starting one row further
# on, so that the machine's drift (other work on it) and a row's place in the
# round fall on every row alike.
# measure_row KEY: one round of row KEY with its flags.
measure_row() {
  local base_args=("${two[@]}") extra=()
  case $1 in
  one*) base_args=("${one[@]}") ;;
  split*) extra=("${split[@]}") ;;
  shadow-all*) extra=("${shadow_all[@]}") ;;
  shadow*) extra=("${shadow[@]}") ;;
  esac
  [[ $1 != *-unshared ]] || extra+=(--share-backbone=false)
  models_row "$1" "${base_args[@]}" "${extra[@]}"
}
row_keys=()
if [[ -z $models_skip ]]; then
  one=(--model "champion=$model" --prediction-log "$tmp/predictions.jsonl")
  # The canary guard off: it would take the challenger out of the split when
  # the machine's noise moves its p99 (this measures the cost, not the guard).
  two=("${one[@]}" --model "challenger=$challenger" --guard-window -1)
  split=(--split "champion=50,challenger=50")
  shadow=(--shadow challenger)
  # Every copy sent unless 2C are running: the queue is never half full at c=C.
  shadow_all=(--shadow challenger --shadow-max $((2 * C)) --queue $((8 * C)))
  row_keys=(one split shadow shadow-all)
  if [[ $share_flag == 1 ]]; then row_keys+=(one-unshared split-unshared shadow-unshared shadow-all-unshared); fi
  for ((round = 0; round < MODELS_ROUNDS; round++)); do
    say "several models: round $((round + 1)) of $MODELS_ROUNDS"
    for ((k = 0; k < ${#row_keys[@]}; k++)); do
      measure_row "${row_keys[(k + round) % ${#row_keys[@]}]}"
    done
  done
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

# --- several models: the report ------------------------------------------------
# mean LIST: the mean of a space-separated list; range LIST: "min-max".
mean() { awk -v l="$1" 'BEGIN { n = split(l, v, " "); for (i = 1; i <= n; i++) s += v[i]; if (n) printf "%.6g", s / n }'; }
range() {
  awk -v l="$1" 'BEGIN { n = split(l, v, " "); lo = hi = v[1]; for (i = 2; i <= n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
    if (n > 1) printf "%.1f-%.1f", lo, hi }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
echo
echo "### Several models in one server (issue 12)"
echo
models_failed=0
if [[ -n $models_skip ]]; then
  echo "Not measured: $models_skip."
else
  declare -A row_label=([one]="(1) one model"
    [split]="(2) 50/50 split of two versions"
    [shadow]="(3) one model + a full shadow of the second version"
    [shadow-all]="(4) as (3), no copy dropped below $((2 * C)) running"
    [one-unshared]="(1') as (1), \`--share-backbone=false\`"
    [split-unshared]="(2') as (2), \`--share-backbone=false\`"
    [shadow-unshared]="(3') as (3), \`--share-backbone=false\`"
    [shadow-all-unshared]="(4') as (4), \`--share-backbone=false\`")
  if [[ $share_flag == 1 ]]; then
    sharing="Sharing the backbone is on (the default) except in the rows marked \`--share-backbone=false\`."
  else
    sharing="This build has no \`--share-backbone\` flag (\`petbreed serve --help\`): the rows without sharing are not measured."
  fi
  ref_tput=$(mean "${row_tput[one]:-}")
  ref_cpu=$(mean "${row_cpu[one]:-}")
  cat <<EOF2
Champion: \`$model_desc\`. Second version: $challenger_desc.
Each row is a fresh server: \`petbreed serve --model champion=CHAMPION [--model challenger=SECOND --guard-window -1]
--prediction-log FILE${SERVE_ARGS:+ $SERVE_ARGS}\` plus the row's flags (split: \`--split champion=50,challenger=50\`; shadow:
\`--shadow challenger\` with the default bounds, a copy dropped when more than \`--shadow-max\` (= \`--max-batch\`) run
or the queue is half full; (4): \`--shadow-max $((2 * C)) --queue $((8 * C))\`), defaults otherwise; then c=$C: $MODELS_N requests
after $WARMUP32 warm-up (the image above). The split's requests carry no unit header, so each goes to a version at
random by weight; the canary guard is off. $sharing The rows ran $MODELS_ROUNDS time(s), in turn (each round
starting one row further on); figures are means over the rounds (images/s: the range in brackets), counts are sums,
peak RSS the largest.

| server | c=$C images/s | vs (1) | p50 ms | p99 ms | server CPU ms/image | vs (1) | errors | peak RSS | models on a shared backbone | traffic |
|---|---|---|---|---|---|---|---|---|---|---|
EOF2
  for key in "${row_keys[@]}"; do
    [[ -z ${row_fail[$key]:-} ]] || models_failed=1
    if [[ -z ${row_tput[$key]:-} ]]; then
      echo "| ${row_label[$key]} | **failed**: ${row_fail[$key]} | | | | | | | | | |"
      continue
    fi
    t=$(mean "${row_tput[$key]}")
    rg=$(range "${row_tput[$key]}")
    cpu=$(mean "${row_cpu[$key]}")
    case $key in
    one*) note="" ;;
    split*) note="answered by champion ${row_a[$key]}, challenger ${row_b[$key]}" ;;
    *) note="shadow copies: ${row_b[$key]} answered, ${row_d[$key]} dropped, ${row_e[$key]} failed, of ${row_a[$key]} requests" ;;
    esac
    echo "| ${row_label[$key]} | $(fmt "$t" 1)${rg:+ ($rg)} | $(ratio "$t" "$ref_tput") | $(fmt "$(mean "${row_p50[$key]}")" 1) | $(fmt "$(mean "${row_p99[$key]}")" 1) | $(fmt "$cpu" 2) | $(ratio "$cpu" "$ref_cpu") | ${row_errors[$key]}${row_fail[$key]:+ **${row_fail[$key]}**} | $(mb "${row_peak[$key]:-0}") MB | ${row_shared[$key]:-?} | $note |"
  done
  echo
  echo "Peak RSS is the server's VmHWM after its row; server CPU is the server's CPU time per answered image, warm-up"
  echo "included (a shadow's runs add to it; on a shared machine it is steadier than images/s)."
  # The shadow's cost, 1 - throughput(shadow) / throughput(1), for each shadow row measured.
  costs=""
  for key in shadow shadow-all shadow-unshared shadow-all-unshared; do
    # Without sharing, against (1') when it was measured: the same server as (1) otherwise.
    rt=$ref_tput rc=$ref_cpu ref_label="(1)"
    if [[ $key == *-unshared && -n ${row_tput[one-unshared]:-} ]]; then
      rt=$(mean "${row_tput[one-unshared]}") rc=$(mean "${row_cpu[one-unshared]}") ref_label="(1')"
    fi
    [[ -n $rt && -n ${row_tput[$key]:-} ]] || continue
    cost=$(awk -v a="$(mean "${row_tput[$key]}")" -v b="$rt" 'BEGIN { printf "%.1f", 100 * (1 - a / b) }')
    cpu_cost=$(awk -v a="$(mean "${row_cpu[$key]}")" -v b="$rc" 'BEGIN { if (b > 0) printf "%+.0f%%", 100 * (a / b - 1) }')
    label=${row_label[$key]%% *}
    if [[ $key == *-unshared ]]; then
      costs+="; without sharing, ${label} against ${ref_label}: **${cost}%** (CPU per image ${cpu_cost})"
    else
      cost_ok=$(ok awk -v c="$cost" 'BEGIN { exit !(c < 10) }')
      costs+="; ${label}: **${cost}%** ($(verdict "$cost_ok"); CPU per image ${cpu_cost})"
      [[ $cost_ok == 1 ]] || missed=$((missed + 1))
    fi
  done
  if [[ -n $costs ]]; then
    echo
    echo "The shadow's cost, 1 - throughput(shadow) / throughput(1), goal < 10%: ${costs#; }."
    echo "Read it with the copies each shadow answered and dropped: a dropped copy costs nothing."
  fi
fi

if ((errors > 0)) || [[ $shutdown_ok != 1 ]] || [[ $models_failed == 1 ]]; then
  show_log
  exit 1
fi
if [[ $STRICT == 1 ]] && ((missed > 0)); then
  say "$missed goal(s) missed"
  exit 1
fi
