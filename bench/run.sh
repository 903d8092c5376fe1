#!/usr/bin/env bash
# `make bench`: sluice beside the upstream alone and beside the Portkey gateway, in one run, on this
# machine; writes bench/out/<time>/*.json and the figures into docs/BENCHMARKS.md.
#
#   bench/run.sh                      the short profile (under 10 minutes)
#   BENCH_PROFILE=full bench/run.sh   the issue's durations (60 s streams)
#   BENCH_ONLY="overhead cancel"      a subset of: overhead rate streams cancel relay
#   BENCH_NO_PEER=1                   skip Portkey (no Node / npm)
#   BENCH_TARGETS="direct peer"       drive only these (default: direct proxy sluice peer; proxy is
#                                     nginx as a plain reverse proxy of the upstream, the floor)
#   BUILD_DIR=build-x                 where sluice, loadgen and fast_upstream were built
#   BENCH_NICE=0                      do not raise the measured processes' priority (root only)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$ROOT/${BUILD_DIR:-build}" && pwd)
PROFILE=${BENCH_PROFILE:-short}
ONLY=${BENCH_ONLY:-overhead rate streams cancel relay}
OUT=$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)
TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
LOADGEN=$BUILD/bench/loadgen
UPSTREAM_BIN=$BUILD/bench/fast_upstream
SLUICE=$BUILD/sluice
mkdir -p "$OUT"

if [ "$PROFILE" = full ]; then
    T_OVERHEAD=10; T_RATE=10; T_STREAMS=60; CANCEL_N=1000; T_RELAY=10
else
    T_OVERHEAD=3; T_RATE=4; T_STREAMS=12; CANCEL_N=200; T_RELAY=4
fi
STREAM_TOKENS=$((T_STREAMS * 20))  # 20 tokens/s each for the whole run
SLOW_TOKENS=$((T_STREAMS * 2))     # 2 tokens/s: 10,000 streams that this machine can also serve directly

# The machine is shared: builds may be running. A higher priority for the measured processes (all
# children inherit it) keeps the comparison about the gateways rather than about the neighbours.
if [ "$(id -u)" = 0 ] && [ "${BENCH_NICE:-1}" != 0 ]; then renice -n -10 -p $$ > /dev/null || true; fi

# 10,000 streams through a gateway need ~20,000 descriptors in it (one to the client, one to the
# upstream per stream) and 10,000 in the load generator. Where the hard limit is lower (some
# containers cap it at 20,000 and refuse to raise it), the big scenarios ask for as many streams as
# one gateway process can hold, and the report says so.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
BIG_STREAMS=10000
if [ "$FD_LIMIT" != unlimited ] && [ $(((FD_LIMIT - 200) / 2)) -lt 10000 ]; then
    BIG_STREAMS=$(((FD_LIMIT - 200) / 2 / 100 * 100))
fi

PIDS=()
cleanup() {
    cp "$TMP"/*.log "$OUT"/ 2> /dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # url, seconds
    for _ in $(seq 1 $(($2 * 10))); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: $1 did not answer" >&2
    return 1
}

log() { echo "bench: $*" >&2; }

# ---- the upstream ----
"$UPSTREAM_BIN" --port 0 > "$TMP/upstream.out" 2> "$TMP/upstream.err" &
UP_PID=$!
PIDS+=("$UP_PID")
for _ in $(seq 1 50); do grep -q PORT "$TMP/upstream.out" && break; sleep 0.1; done
UP_PORT=$(awk '/PORT/{print $2}' "$TMP/upstream.out")
UP=http://127.0.0.1:$UP_PORT
log "fast_upstream on $UP (pid $UP_PID)"

TARGETS=${BENCH_TARGETS:-direct proxy sluice peer}
[ -n "${BENCH_NO_PEER:-}" ] && TARGETS=${TARGETS/peer/}
targets=$TARGETS

# ---- sluice ----
SLUICE_SURFACE=none
SLUICE_PID=
KEY=
SL=
if [[ " $TARGETS " == *" sluice "* ]]; then
SLUICE_PORT=$(free_port)
CFG=$TMP/sluice.toml
model() {  # name, upstream model spec
    cat <<EOF
[[models]]
name = "$1"
role = "cloud_large"
provider = "openai"
base_url = "$UP/v1"
model = "$2"
api_key_env = "BENCH_UPSTREAM_KEY"
max_connections = 20000
idle_timeout_ms = 120000
EOF
}
{
    cat <<EOF
[server]
listen = "127.0.0.1:$SLUICE_PORT"
max_connections = 100000

[store]
url = "sqlite://$TMP/sluice.db"

EOF
    model bench bench
    model bench-paced "bench-i50-n$STREAM_TOKENS"
    model bench-slow "bench-i500-n$SLOW_TOKENS"
    model bench-cancel bench-i10-n3000
    model bench-relay bench-n1000
    cat <<EOF

[routing]
default_model_type = "cloud_large"
EOF
} > "$CFG"
export BENCH_UPSTREAM_KEY=bench-not-a-secret
KEY=$("$SLUICE" keys create --name bench --config "$CFG" | grep -o 'sk-[A-Za-z0-9_-]*' | head -1)
"$SLUICE" serve --config "$CFG" --log-level warn > "$TMP/sluice.log" 2>&1 &
SLUICE_PID=$!
PIDS+=("$SLUICE_PID")
SL=http://127.0.0.1:$SLUICE_PORT
wait_http "$SL/healthz" 30
log "sluice on $SL (pid $SLUICE_PID)"

# Which sluice surface to drive: the OpenAI-compatible one speaks the same body as the upstream and
# the peer; the seed endpoint otherwise.
probe=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SL/v1/chat/completions" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"model":"bench","messages":[{"role":"user","content":"hi"}]}' || true)
if [ "$probe" = 200 ]; then
    SLUICE_SURFACE=openai
else
    SLUICE_SURFACE=seed
fi
log "sluice surface: $SLUICE_SURFACE (probe $probe)"
fi

# ---- nginx: a proxy that only moves bytes (keep-alive both sides, no buffering): the floor ----
NG=
NGINX_VERSION=""
if [[ " $TARGETS " == *" proxy "* ]] && command -v nginx > /dev/null; then
    NG_PORT=$(free_port)
    mkdir -p "$TMP/nginx"
    cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream fast { server 127.0.0.1:$UP_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NG_PORT;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://fast;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
    nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' > "$TMP/nginx.log" 2>&1 &
    NG_PID=$!
    PIDS+=("$NG_PID")
    NG=http://127.0.0.1:$NG_PORT
    NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
    wait_http "$NG/" 30
    # The worker does the proxying: its CPU and memory are the figures (the master only waits).
    NG_WORKER=$(pgrep -P "$NG_PID" | head -1)
    log "$NGINX_VERSION on $NG (pid $NG_PID, worker $NG_WORKER)"
fi

# ---- Portkey ----
PEER_VERSION=""
if [[ " $TARGETS " == *" peer "* ]] && command -v node > /dev/null; then
    (cd "$ROOT/bench/peers" && { [ -d node_modules ] || npm ci --silent --no-audit --no-fund --ignore-scripts; })
    PK_JS=$ROOT/bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js
    # The two documented fixes, applied to the installed copy only (its source is never committed):
    # streaming re-wraps the upstream Response so that Portkey may add its headers (Node's fetch
    # Response headers are immutable), and the server binds to loopback instead of all interfaces.
    sed -i 's/this.updateHeaders(i,n.cacheStatus,o)/(this.context.isStreaming\&\&(i=new Response(i.body,i))),this.updateHeaders(i,n.cacheStatus,o)/;
            s/e({fetch:Lu.fetch,port:Ku})/e({fetch:Lu.fetch,port:Ku,hostname:"127.0.0.1"})/' "$PK_JS"
    grep -q 'new Response(i.body,i)' "$PK_JS" || { log "Portkey streaming patch did not apply"; exit 1; }
    PEER_VERSION=$(node -p "require('$ROOT/bench/peers/node_modules/@portkey-ai/gateway/package.json').version")
    PK_PORT=$(free_port)
    (cd "$TMP" && exec node "$PK_JS" --port="$PK_PORT" --headless > "$TMP/portkey.log" 2>&1) &
    PK_PID=$!
    PIDS+=("$PK_PID")
    PK=http://127.0.0.1:$PK_PORT
    wait_http "$PK/" 30
    log "portkey $PEER_VERSION on $PK (pid $PK_PID)"
fi

# ---- scenario helpers ----
openai_body() {  # model stream message
    printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"%s"}]}' "$1" "$2" "$3"
}
seed_body() {  # model stream message
    printf '{"message":"%s","preferred_model":"%s","stream":%s}' "$3" "$1" "$2"
}

# run LABEL TARGET(direct|sluice|peer) MODEL STREAM(true|false) [loadgen args...]
run() {
    local label=$1 target=$2 model=$3 stream=$4
    shift 4
    local url body headers=() watch
    local message="Say hello to the benchmark. bench-id:{id}"
    case $target in
        direct)
            url=$UP/v1/chat/completions
            body=$(openai_body "$(upstream_model "$model")" "$stream" "$message")
            watch=$UP_PID ;;
        proxy)
            [ -n "$NG" ] || return 0
            url=$NG/v1/chat/completions
            body=$(openai_body "$(upstream_model "$model")" "$stream" "$message")
            watch=${NG_WORKER:-$NG_PID} ;;
        sluice)
            headers=(--header "Authorization: Bearer $KEY")
            if [ "${SURFACE:-$SLUICE_SURFACE}" = openai ]; then
                url=$SL/v1/chat/completions
                body=$(openai_body "$model" "$stream" "$message")
            else
                if [ "$stream" = true ]; then url=$SL/api/v1/chat/stream; else url=$SL/api/v1/chat; fi
                body=$(seed_body "$model" "$stream" "$message")
            fi
            watch=$SLUICE_PID ;;
        peer)
            [ -n "$PEER_VERSION" ] || return 0
            url=$PK/v1/chat/completions
            body=$(openai_body "$(upstream_model "$model")" "$stream" "$message")
            headers=(--header "x-portkey-provider: openai" --header "x-portkey-custom-host: $UP/v1"
                     --header "Authorization: Bearer bench")
            watch=$PK_PID ;;
    esac
    if ! kill -0 "$watch" 2> /dev/null; then
        log "$target is not running (see $TMP/*.log); $label.$target skipped"
        return 0
    fi
    local stream_flag=()
    [ "$stream" = true ] && stream_flag=(--stream)
    "$LOADGEN" --url "$url" --body "$body" "${headers[@]}" "${stream_flag[@]}" --watch-pid "$watch" \
        --watch-pid "$UP_PID" --label "$label.$target" --json "$OUT/$label.$target.json" "$@" || true
}

upstream_model() {  # the model name the upstream sees for a sluice model name
    case $1 in
        bench) echo bench ;;
        bench-paced) echo "bench-i50-n$STREAM_TOKENS" ;;
        bench-slow) echo "bench-i500-n$SLOW_TOKENS" ;;
        bench-cancel) echo bench-i10-n3000 ;;
        bench-relay) echo bench-n1000 ;;
    esac
}

want() { [[ " $ONLY " == *" $1 "* ]]; }

# Warm-up: pools filled, Node's JIT hot, SQLite pages cached.
for t in $targets; do
    run warmup "$t" bench false --connections 64 --duration 1 > /dev/null
    run warmup "$t" bench true --connections 64 --duration 1 > /dev/null
done

if want overhead; then
    for stream in false true; do
        mode=$([ "$stream" = true ] && echo stream || echo plain)
        for c in 1 64 512; do
            for t in $targets; do
                run "overhead.$mode.c$c" "$t" bench "$stream" --connections "$c" --duration "$T_OVERHEAD" \
                    --ramp-s 0.5
            done
        done
    done
fi

if want overhead && [ "$SLUICE_SURFACE" = openai ]; then
    # The SPEC's own endpoint, /api/v1/chat/stream: each answer is a new session, stored before [DONE].
    # At 64 connections (req/s) and 8 (p99), beside the same loads through the plain proxy.
    for c in 64 8; do
        for t in ${targets/peer/}; do
            SURFACE=seed run "overhead.stream.seed$c" "$t" bench true --connections "$c" \
                --duration "$T_OVERHEAD" --ramp-s 0.5
        done
    done
fi

if want rate; then
    for stream in false true; do
        mode=$([ "$stream" = true ] && echo stream || echo plain)
        for t in $targets; do
            run "overhead.$mode.rate5000" "$t" bench "$stream" --rate 5000 --connections 256 \
                --duration "$T_RATE" --timeout-s 10
        done
    done
fi

if want streams; then
    # label streams model threads
    for spec in "streams.1000 1000 bench-paced 1" "streams.10000 $BIG_STREAMS bench-paced 2" \
                "streams.10000slow $BIG_STREAMS bench-slow 2"; do
        read -r label n model threads <<< "$spec"
        for t in $targets; do
            curl -s -X POST "$UP/_reset" > /dev/null
            run "$label" "$t" "$model" true --connections "$n" --requests "$n" --ramp-s 3 \
                --duration $((T_STREAMS + 5)) --timeout-s $((T_STREAMS + 15)) --threads "$threads"
            sleep 2  # let sockets in TIME_WAIT and the gateway's pools settle
        done
    done
fi

if want relay; then
    for t in ${targets/peer/}; do
        run relay "$t" bench-relay true --connections 32 --duration "$T_RELAY"
    done
fi

if want cancel; then
    for t in $targets; do
        curl -s -X POST "$UP/_reset" > /dev/null
        n=$CANCEL_N
        [ "$t" = peer ] && n=$((CANCEL_N / 4))  # a peer that never closes upstream keeps streams running
        run cancel "$t" bench-cancel true --connections 4 --requests "$n" --duration 60 \
            --cancel-after 3 --closes-url "$UP/_closes"
    done
fi

[ -n "$SL" ] && { curl -s "$SL/metrics" -H "Authorization: Bearer $KEY" > "$OUT/sluice-metrics.txt" || true; }

# ---- the report ----
{
    echo "{"
    echo "\"nproc\": $(nproc),"
    echo "\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\","
    echo "\"kernel\": \"$(uname -r)\","
    echo "\"mem_gb\": $(awk '/MemTotal/{printf "%.1f", $2/1048576}' /proc/meminfo),"
    echo "\"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "\"profile\": \"$PROFILE\","
    echo "\"fd_limit\": \"$FD_LIMIT\","
    echo "\"big_streams\": $BIG_STREAMS,"
    echo "\"nice\": $(ps -o ni= -p $$ | tr -d ' '),"
    echo "\"sluice_surface\": \"$SLUICE_SURFACE\","
    echo "\"peer\": \"${PEER_VERSION:+@portkey-ai/gateway $PEER_VERSION}\","
    echo "\"proxy\": \"$NGINX_VERSION\","
    echo "\"node\": \"$(node --version 2>/dev/null || true)\","
    echo "\"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)\","
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\""
    echo "}"
} > "$OUT/machine.json"
python3 "$ROOT/bench/report.py" "$OUT" "$ROOT/docs/BENCHMARKS.md"
log "figures in $OUT; docs/BENCHMARKS.md updated"
