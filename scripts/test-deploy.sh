#!/usr/bin/env bash
# make test-deploy: prove the Kubernetes and KServe manifests in deploy/ on a
# real control plane, all on loopback and torn down at the end:
#   1. render the overlays with kustomize (and with kubectl kustomize): dev,
#      prod, and prod with an A/B test (ab) or a KServe canary (canary);
#   2. start etcd, kube-apiserver, kube-controller-manager, kube-scheduler
#      (one pinned release, built by scripts/kube-build.sh) and kwok (fake
#      nodes: it marks pods running and ready, and Job pods succeeded; no
#      container runs);
#   3. install KServe's InferenceService CRD (third_party/kserve/);
#   4. kubectl apply --dry-run=server of everything the overlays render;
#   5. every manifest in deploy/bad/ must be refused, with the expected message;
#   6. a real apply of both overlays: the HPA scales the Deployment to its
#      minimum and it rolls out, the Service's EndpointSlices list every pod,
#      both Indexed Jobs complete every index, the PDB counts the pods, the
#      InferenceService is stored;
#   7. if the image $PETBREED_IMAGE (default localhost/petbreed:dev, made by
#      make image) exists: podman kube
#      play of the rendered Deployment, a real prediction through it, and
#      podman kube down.
# Waits are polls with timeouts (KUBE_WAIT seconds each, default 120).
# KUBE_LOGS=DIR keeps the components' logs there. Fake pod IPs are in 198.51.100.0/24 (a
# documentation range; nothing connects to them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=${PETBREED_ASSETS:-$root/../shared/assets}
WAIT=${KUBE_WAIT:-120}
t0=$SECONDS

say() { printf '== [%3d s] %s\n' "$((SECONDS - t0))" "$*"; }
fail() { printf 'test-deploy: FAIL: %s\n' "$*" >&2; exit 1; }
since() { echo "$((SECONDS - t0)) s"; }

command -v etcd >/dev/null || fail "etcd not found (Debian's etcd-server; scripts/deps.sh installs it)"
bin=$("$root/scripts/kube-build.sh")
kubectl="$bin/kubectl"
kustomize="$bin/kustomize"

work=$(mktemp -d "${TMPDIR:-/tmp}/petbreed-kube.XXXXXX")
pids=()
podman_yaml=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$podman_yaml" ]; then
    if [ "$rc" -ne 0 ]; then
      for c in $(podman ps -a --format '{{.Names}}' | grep -- '-petbreed$'); do
        echo "--- podman logs $c" >&2
        podman logs --tail 20 "$c" >&2
      done
    fi
    podman kube down "$podman_yaml" >/dev/null 2>&1
  fi
  # Stop what this script started, newest first: TERM, then KILL after 10 s.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[i]}" 2>/dev/null
    wait "${pids[i]}" 2>/dev/null
  done
  if [ "$rc" -ne 0 ] && [ -d "$work/logs" ]; then
    for f in "$work"/logs/*.log; do
      echo "--- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ -n "${KUBE_LOGS:-}" ] && [ -d "$work/logs" ]; then
    mkdir -p "$KUBE_LOGS" && cp "$work"/logs/*.log "$KUBE_LOGS/"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# poll SECONDS DESCRIPTION COMMAND...: run COMMAND every half second until it
# succeeds, or fail after SECONDS.
poll() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  local begin=$SECONDS
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${limit} s waiting for $what"
    sleep 0.5
  done
  [ $((SECONDS - begin)) -lt 5 ] || echo "  (waited $((SECONDS - begin)) s for $what)"
}

# A free loopback port (the kernel picks it; the tiny race is acceptable).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() { # name command...
  local name=$1; shift
  "$@" >"$work/logs/$name.log" 2>&1 &
  pids+=($!)
}

mkdir -p "$work/logs" "$work/pki"

# 1. Render.
say "render deploy/overlays/{dev,prod,ab,canary} with kustomize $("$kustomize" version 2>/dev/null)"
for o in dev prod ab canary; do
  "$kustomize" build "$root/deploy/overlays/$o" >"$work/$o.yaml"
  "$kubectl" kustomize "$root/deploy/overlays/$o" >"$work/$o.kubectl.yaml"
  a=$(grep -E '^kind:|^  name:' "$work/$o.yaml")
  b=$(grep -E '^kind:|^  name:' "$work/$o.kubectl.yaml")
  [ "$a" = "$b" ] || fail "kustomize and kubectl kustomize render different objects for $o"
  echo "$o: $(grep -c '^kind:' "$work/$o.yaml") objects: $(grep '^kind:' "$work/$o.yaml" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')"
done

# 2. The control plane.
say "start etcd $(etcd --version | awk '/etcd Version/ {print $3}'), Kubernetes $("$kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -1), kwok"
etcd_port=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)
kcm_port=$(free_port)
sched_port=$(free_port)
start etcd etcd --name default --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "default=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync
poll 30 "etcd" curl -fsS "http://127.0.0.1:$etcd_port/health"

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" >"$work/pki/tokens.csv"
openssl genrsa -out "$work/pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/pki/sa.key" -pubout -out "$work/pki/sa.pub" 2>/dev/null
kubeconfig="$work/kubeconfig"
cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: https://127.0.0.1:$api_port
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: $token
contexts:
  - name: test
    context: {cluster: test, user: admin}
current-context: test
EOF
chmod 600 "$kubeconfig"
export KUBECONFIG="$kubeconfig"

# WatchList=false: streaming lists need etcd's RequestWatchProgress, which
# Debian's etcd 3.4 lacks; kwok's client asks for them and, refused late, its
# watches fail and back off for seconds (Jobs took a minute to complete).
# --endpoint-reconciler-type none: the default reconciler refuses 127.0.0.1
# as the kubernetes Service's endpoint. The ServiceAccount admission plugin is
# off: no token controller issues tokens here, and no pod runs to use one.
start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$work/pki/apiserver" --token-auth-file "$work/pki/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$work/pki/sa.pub" \
  --service-account-signing-key-file "$work/pki/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
  --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none --feature-gates WatchList=false
poll 60 "kube-apiserver /readyz" "$kubectl" get --raw /readyz
start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$kubeconfig" \
  --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false --controllers '*' \
  --horizontal-pod-autoscaler-sync-period 2s \
  --service-account-private-key-file "$work/pki/sa.key" --use-service-account-credentials=false
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$kubeconfig" \
  --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false
stages=()
for f in "$bin"/stages/*.yaml; do stages+=(--config "$f"); done
start kwok "$bin/kwok" --kubeconfig "$kubeconfig" "${stages[@]}" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 198.51.100.0/24 --node-ip 192.0.2.1
poll 60 "kube-controller-manager /healthz" curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
poll 60 "kube-scheduler /healthz" curl -fsSk "https://127.0.0.1:$sched_port/healthz"

# Two fake nodes (the Deployment spreads over hostnames).
for n in 0 1; do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$n
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "8", memory: 16Gi, pods: "110"}
  capacity: {cpu: "8", memory: 16Gi, pods: "110"}
---
EOF
done >"$work/nodes.yaml"
"$kubectl" apply -f "$work/nodes.yaml" >/dev/null
node_ready() {
  [ "$("$kubectl" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -eq 2 ]
}
poll "$WAIT" "the kwok nodes to be Ready" node_ready
echo "control plane and 2 kwok nodes ready at $(since)"

# 3. KServe's InferenceService CRD (server-side: it is too large for the
# last-applied annotation of a client-side apply).
say "install KServe's InferenceService CRD ($(cat "$root/third_party/kserve/VERSION"))"
"$kubectl" apply --server-side -f "$root/third_party/kserve/serving.kserve.io_inferenceservices.yaml" >/dev/null
crd_ready() {
  [ "$("$kubectl" get crd inferenceservices.serving.kserve.io -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] &&
    "$kubectl" get inferenceservices -A >/dev/null
}
poll 60 "the InferenceService CRD to be served" crd_ready

# 4. Server-side dry runs of the overlays (the namespaces must exist).
for ns in petbreed-dev petbreed; do "$kubectl" create namespace "$ns" >/dev/null; done
for o in dev prod ab canary; do
  say "kubectl apply --dry-run=server: overlay $o"
  out=$("$kubectl" apply --dry-run=server --validate=strict -f "$work/$o.yaml" 2>&1) ||
    { echo "$out"; fail "the API server refused overlay $o"; }
  printf "  %s\n" "${out//$'\n'/$'\n  '}"
done

# 5. Broken manifests must be refused, for the expected reason.
say "deploy/bad: each must be refused"
nbad=0
for f in "$root"/deploy/bad/*.yaml; do
  expect=$(sed -n 's/^# expect: //p' "$f" | head -1)
  [ -n "$expect" ] || fail "$f has no '# expect:' line"
  if out=$("$kubectl" apply --dry-run=server --validate=strict -n petbreed-dev -f "$f" 2>&1); then
    echo "$out"
    fail "$(basename "$f") was accepted"
  fi
  grep -qF -- "$expect" <<<"$out" || { echo "$out"; fail "$(basename "$f") was refused, but not with \"$expect\""; }
  printf '  refused %-24s %s\n' "$(basename "$f"):" "$(tr '\n' ' ' <<<"$out" | cut -c1-240)"
  nbad=$((nbad + 1))
done
[ "$nbad" -ge 5 ] || fail "only $nbad bad manifests"

# 6. A real apply of both overlays, each into its namespace. No storage
# provisioner runs here: pre-made volumes stand in for one, so the claims
# bind (nothing mounts them).
for pv in 0 1 2 3; do
  cat <<EOF2
apiVersion: v1
kind: PersistentVolume
metadata:
  name: test-pv-$pv
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /nonexistent/petbreed-test-pv-$pv}
---
EOF2
done >"$work/pvs.yaml"
"$kubectl" apply -f "$work/pvs.yaml" >/dev/null

job_done() { [ "$("$kubectl" "${ns[@]}" get job "$1" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')" = True ]; }
pvc_bound() { [ "$("$kubectl" "${ns[@]}" get pvc -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c Bound)" -eq 2 ]; }
slice_ready() {
  local a
  a=$("$kubectl" "${ns[@]}" get endpointslices -l kubernetes.io/service-name=petbreed \
    -o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}')
  [ "$(grep -cE '^198\.51\.100\.' <<<"$a")" -eq "$1" ]
}
# The HPA raises the Deployment (created without replicas: one pod) to its
# minReplicas without any metrics; rolled out, every one is ready.
scaled() {
  [ "$("$kubectl" "${ns[@]}" get deployment petbreed -o jsonpath='{.spec.replicas}')" -eq "$1" ] &&
    [ "$("$kubectl" "${ns[@]}" get deployment petbreed -o jsonpath='{.status.readyReplicas}')" = "$1" ]
}
pdb_counted() { [ "$("$kubectl" "${ns[@]}" get pdb petbreed -o jsonpath='{.status.currentHealthy}')" = "$1" ]; }

for o in dev prod; do
  if [ "$o" = dev ]; then ns=(-n petbreed-dev); else ns=(-n petbreed); fi
  say "kubectl apply: overlay $o into namespace ${ns[1]}"
  "$kubectl" apply -f "$work/$o.yaml" | sed 's/^/  /'
  poll "$WAIT" "the PVCs of $o to bind" pvc_bound
  min=$("$kubectl" "${ns[@]}" get hpa petbreed -o jsonpath='{.spec.minReplicas}')
  "$kubectl" "${ns[@]}" rollout status deployment/petbreed --timeout="${WAIT}s" | sed 's/^/  /'
  poll "$WAIT" "the HPA to scale the Deployment of $o to its minReplicas $min" scaled "$min"
  "$kubectl" "${ns[@]}" get pods -l app.kubernetes.io/component=server -o wide | sed 's/^/  /'
  poll "$WAIT" "$min ready endpoints in the EndpointSlices of Service petbreed" slice_ready "$min"
  echo "  EndpointSlice: $("$kubectl" "${ns[@]}" get endpointslices -l kubernetes.io/service-name=petbreed \
    -o jsonpath='{range .items[*]}{.metadata.name} ports {.ports[*].port}, ready endpoints {.endpoints[*].addresses}{end}')"

  # Each Job's --shard-from-env N must be its completions, and it must
  # complete every index 0..N-1.
  for job in petbreed-predict petbreed-features; do
    n=$("$kubectl" "${ns[@]}" get job "$job" -o jsonpath='{.spec.completions}')
    args=$("$kubectl" "${ns[@]}" get job "$job" -o jsonpath='{.spec.template.spec.containers[0].args}')
    mode=$("$kubectl" "${ns[@]}" get job "$job" -o jsonpath='{.spec.completionMode}')
    [ "$mode" = Indexed ] || fail "$job: completionMode $mode"
    grep -qF "\"--shard-from-env\",\"$n\"" <<<"$args" || fail "$job: completions $n but args $args"
    poll "$WAIT" "Job $job to complete" job_done "$job"
    got=$("$kubectl" "${ns[@]}" get job "$job" -o jsonpath='{.status.completedIndexes}')
    case $n in 1) want=0 ;; 2) want=0,1 ;; *) want="0-$((n - 1))" ;; esac
    [ "$got" = "$want" ] || fail "$job: completed indexes $got, want $want"
    echo "  Job $job: Complete, completedIndexes $got of $n, $("$kubectl" "${ns[@]}" get job "$job" -o jsonpath='{.status.succeeded}') pods succeeded ($args)"
  done

  echo "  HPA petbreed: $("$kubectl" "${ns[@]}" get hpa petbreed -o jsonpath='{.spec.minReplicas}-{.spec.maxReplicas} on {.spec.metrics[0].resource.name}, {.status.currentReplicas} now')" \
    "(no metrics server here: it scales to its minimum only)"
  poll "$WAIT" "the PDB to count $min healthy pods" pdb_counted "$min"
  echo "  PDB petbreed: $("$kubectl" "${ns[@]}" get pdb petbreed -o jsonpath='currentHealthy {.status.currentHealthy}, desiredHealthy {.status.desiredHealthy}, disruptionsAllowed {.status.disruptionsAllowed}')"
  "$kubectl" "${ns[@]}" get inferenceservice petbreed -o jsonpath='{.spec.predictor.containers[0].env[?(@.name=="PROTOCOL")].value}' | grep -qx v2 ||
    fail "the InferenceService is not stored with PROTOCOL=v2"
  echo "  InferenceService petbreed: stored and validated, canaryTrafficPercent $(c=$("$kubectl" "${ns[@]}" get inferenceservice petbreed -o jsonpath='{.spec.predictor.canaryTrafficPercent}'); echo "${c:-unset}") (no KServe controller reconciles it)"
done
echo "Kubernetes checks passed at $(since)"

# 7. The rendered Deployment under podman with the real image.
image=${PETBREED_IMAGE:-localhost/petbreed:dev}
export CONTAINERS_CONF="$root/deploy/containers.conf"
if ! command -v podman >/dev/null || ! podman image exists "$image" 2>/dev/null; then
  echo "SKIP podman kube play: no image $image (make image builds it)"
  echo "test-deploy: ok in $(since) (without podman)"
  exit 0
fi
say "podman kube play of the rendered dev Deployment with $image"
[ -f "$ASSETS/backbone/mobilenetv2-12-int8.onnx" ] || fail "no shared assets at $ASSETS (set PETBREED_ASSETS)"
port=$(free_port)
mkdir -p "$work/podman" "$work/podman-data"
chmod 0777 "$work/podman-data"
# What differs from the cluster: the host network (podman refuses ports: with
# it, so they go, and the server listens on a loopback port), the shared
# backbone as the model instead of the registry on the PVC, a host directory
# for /data, and the token as a plain value (kube play is given no Secret).
cat >"$work/podman/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$work/podman" "$root/deploy/overlays/dev")
# Through the ConfigMap, as in the cluster (podman 4.3 lets envFrom override
# env, the reverse of Kubernetes, so env cannot carry these).
configMapGenerator:
  - name: petbreed-config
    behavior: merge
    literals:
      - PETBREED_ADDR=127.0.0.1:$port
      - PETBREED_MODEL=/models/mobilenetv2-12-int8.onnx
      - PETBREED_LABELS=/models/imagenet_labels.txt
patches:
  - target: {kind: Deployment, name: petbreed}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: $image
      - op: remove
        path: /spec/template/spec/containers/0/ports
      - op: replace
        path: /spec/template/spec/containers/0/startupProbe/httpGet/port
        value: $port
      - op: replace
        path: /spec/template/spec/containers/0/readinessProbe/httpGet/port
        value: $port
      - op: replace
        path: /spec/template/spec/containers/0/livenessProbe/httpGet/port
        value: $port
      - op: test
        path: /spec/template/spec/containers/0/env/1/name
        value: PETBREED_ADMIN_TOKEN
      - op: replace
        path: /spec/template/spec/containers/0/env/1
        value: {name: PETBREED_ADMIN_TOKEN, value: test-only}
      - op: add
        path: /spec/template/spec/containers/0/volumeMounts/-
        value: {name: models, mountPath: /models, readOnly: true}
      - op: replace
        path: /spec/template/spec/volumes/0
        value: {name: data, hostPath: {path: $work/podman-data, type: Directory}}
      - op: add
        path: /spec/template/spec/volumes/-
        value: {name: models, hostPath: {path: $ASSETS/backbone, type: Directory}}
EOF
"$kustomize" build --load-restrictor LoadRestrictionsNone "$work/podman" >"$work/podman/all.yaml"
# The Deployment and the ConfigMap it reads, nothing else.
awk -v RS='\n---\n' -v ORS='\n---\n' '/\nkind: (Deployment|ConfigMap)\n/ || /^kind: (Deployment|ConfigMap)\n/' "$work/podman/all.yaml" >"$work/podman/play.yaml"
[ "$(grep -c '^kind:' "$work/podman/play.yaml")" -eq 2 ] || fail "could not cut the Deployment and ConfigMap out of the render"
podman_yaml="$work/podman/play.yaml"
start=$SECONDS
# --build=false, and from the temporary directory: kube play would otherwise
# build the image from a ./petbreed/Containerfile if one existed.
# (Without systemd, podman logs that it cannot add the HEALTHCHECK timers.)
(cd "$work/podman" && podman kube play --build=false --network host "$podman_yaml" 2>&1) |
  grep -v 'systemd connection' | sed 's/^/  /'
ready() { curl -fsS "http://127.0.0.1:$port/v2/health/ready"; }
poll 60 "the container's /v2/health/ready" ready
echo "  ready in $((SECONDS - start)) s"
curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null || fail "/api/health (liveness) failed"
out=$(curl -fsS --max-time 30 --data-binary @"$ASSETS/photos/chelsea.png" "http://127.0.0.1:$port/api/predict") ||
  fail "predict through the container failed"
echo "  /api/predict chelsea.png: $(cut -c1-200 <<<"$out")"
grep -q 'Egyptian cat' <<<"$out" || fail "the container's top prediction for chelsea.png is not Egyptian cat"
ctr=$(podman ps --format '{{.Names}}' | grep -- '-petbreed$' | head -1)
[ -n "$ctr" ] || fail "no running container named *-petbreed"
got=$(podman inspect --format '{{.Config.User}} readonly={{.HostConfig.ReadonlyRootfs}} dropped={{.HostConfig.CapDrop}}' "$ctr")
echo "  container $ctr: user $got"
case $got in 65532*readonly=true*CAP_NET_RAW*) ;; *) fail "the container does not run as 65532 with a read-only root and no capabilities: $got" ;; esac
podman kube down "$podman_yaml" 2>&1 | grep -v 'systemd connection' >/dev/null || true
podman container exists "$ctr" && fail "podman kube down left $ctr"
podman_yaml=""
echo "  podman kube down: done"
echo "test-deploy: ok in $(since)"
