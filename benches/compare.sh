#!/usr/bin/env bash
# One-command peer comparison for dugong: wrk, ureq, curl and Python dugong 3.8.2 against
# our bench-tools peer_client, all on ONE connection to a local nginx, interleaved in rounds;
# the TLS rows go to the same nginx over HTTPS, with a CA and certificate made at start; the
# fetch rows run the `fetch` example (the CLI, bodies to /dev/null) against wrk.
#
#   benches/compare.sh            full run (medians of 5 rounds; about 14 minutes)
#   benches/compare.sh --quick    smoke test: one round, ~1 s per row, no speed judgement
#
# Exits non-zero if any client fails, returns a wrong status or body length, or uses more
# than one connection. Writes target/compare/report.md (the table) and target/compare/logs/.
#
# Environment overrides: ROUNDS (5), DURATION (seconds per small-GET row, 4), BIG_REQS
# (100 MiB transfers per big row per round, 10), CLIENT_CPUS ("0 1"), PROXY_CPU (1),
# BIG_CPU (1), TLS_CPU (1), RTT_MS (5), CURL_REQS (100 B GETs per curl row per round, 4000),
# HANDSHAKES (fresh connections per handshake row per round, 50), FETCH_CPU (0), NO_BUILD=1
# (use the bench-tools and fetch already built in target/release), ROWS (which groups of
# rows to run, any of "small rtt big rss tls fetch"; default all: e.g. ROWS=tls reruns only
# the HTTPS rows).
# Placement: the nginx worker (and master) on CPU 0; clients pinned with taskset to CPU 0
# (the server's) and, separately, CPU 1. The delay proxy runs on PROXY_CPU, with its
# clients on the first of CLIENT_CPUS. Big transfers and RSS rows: client on BIG_CPU; TLS
# rows: client on TLS_CPU; fetch rows: fetch and wrk on FETCH_CPU (the server's).
set -euo pipefail

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/benches/compare
OUT=$ROOT/target/compare
VENV=$OUT/venv
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
NCPU=$(nproc)

if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-1}; BIG_REQS=${BIG_REQS:-1}
    CURL_REQS=${CURL_REQS:-300}; HANDSHAKES=${HANDSHAKES:-10}
else
    ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-4}; BIG_REQS=${BIG_REQS:-10}
    CURL_REQS=${CURL_REQS:-4000}; HANDSHAKES=${HANDSHAKES:-50}
fi
RTT_MS=${RTT_MS:-5}
if [ "$NCPU" -ge 2 ]; then
    CLIENT_CPUS=${CLIENT_CPUS:-"0 1"}; PROXY_CPU=${PROXY_CPU:-1}; BIG_CPU=${BIG_CPU:-1}
    TLS_CPU=${TLS_CPU:-1}
else
    CLIENT_CPUS=${CLIENT_CPUS:-0}; PROXY_CPU=${PROXY_CPU:-0}; BIG_CPU=${BIG_CPU:-0}
    TLS_CPU=${TLS_CPU:-0}
fi
RTT_CPU=${CLIENT_CPUS%% *}
FETCH_CPU=${FETCH_CPU:-0}
SMALL=100
M100=$((100 * 1024 * 1024))
G1=$((1024 * 1024 * 1024))
# A client run that takes longer than this is killed and counted as a failure.
RUN_TIMEOUT=$((DURATION * 3 + 120))

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

ROWS=${ROWS:-small rtt big rss tls fetch}
for g in $ROWS; do
    case "$g" in small | rtt | big | rss | tls | fetch) ;; *) die "ROWS: unknown group $g" ;; esac
done
wanted() { [[ " $ROWS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- install what is missing
APT_UPDATED=0
apt_install() {
    [ "$#" -gt 0 ] || return 0
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo > /dev/null || die "need root or sudo to install: $*"
        sudo=(sudo)
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" > /dev/null
}

ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
need=()
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -f "$ECHO_MODULE" ] || need+=(libnginx-mod-http-echo)
command -v wrk > /dev/null || need+=(wrk)
command -v curl > /dev/null || need+=(curl)
command -v taskset > /dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 > /dev/null || need+=(python3)
if wanted big; then command -v iperf3 > /dev/null || need+=(iperf3); fi
apt_install "${need[@]}"
export PATH=$PATH:/usr/sbin

mkdir -p "$OUT"
if ! "$VENV/bin/python" -c 'import dugong' 2> /dev/null; then
    if ! [ -x "$VENV/bin/pip" ]; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV" 2> /dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    log "pip install dugong==3.8.2 into $VENV"
    "$VENV/bin/pip" install -q dugong==3.8.2
fi
PY=$VENV/bin/python
PYDUGONG_VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("dugong"))')
[ "$PYDUGONG_VERSION" = 3.8.2 ] || die "Python dugong is $PYDUGONG_VERSION in $VENV, expected 3.8.2"

if [ "${NO_BUILD:-0}" = 1 ]; then
    log "NO_BUILD=1: using the binaries already in $BIN"
else
    log "cargo build --release -p dugong-bench-tools (peer_client, ureq_client, delay_proxy, make_cert)"
    (cd "$ROOT" && cargo build --release --quiet -p dugong-bench-tools)
    if wanted fetch; then
        log "cargo build --release --example fetch"
        (cd "$ROOT" && cargo build --release --quiet -p dugong --example fetch)
    fi
fi
for b in peer_client ureq_client delay_proxy make_cert; do
    [ -x "$BIN/$b" ] || die "missing $BIN/$b after the build"
done
if wanted fetch; then
    [ -x "$BIN/examples/fetch" ] || die "missing $BIN/examples/fetch after the build"
fi

# ---------------------------------------------------------------- scratch, nginx, proxy
SCR=$OUT/run
LOGS=$OUT/logs
RAW=$OUT/raw.tsv
rm -rf "$SCR" "$LOGS"
mkdir -p "$SCR"/{logs,www,tmp/proxy,tmp/fcgi,tmp/uwsgi,tmp/scgi} "$LOGS"
: > "$RAW"

# Bodies of big PUTs spill to a temp file in nginx (client_body_buffer_size 1m): keep that
# in RAM so the PUT rows measure the network path, not a disk.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    BODY_TEMP=$(mktemp -d /dev/shm/dugong-compare.XXXXXX)
else
    BODY_TEMP=$SCR/body
    mkdir -p "$BODY_TEMP"
fi
# fetch's report (a line per response on stderr) goes there too: the fetch rows measure the
# CLI, not a file system's journal.
FETCH_REPORT=$BODY_TEMP/fetch.report

NGINX_PID=
PROXY_PID=
IPERF_PID=
# stop PID: TERM, then KILL if it is still there after 5 s (a TERM that lands while the
# child is still between fork and exec can be lost), then reap it.
stop() {
    kill -TERM "$1" 2> /dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$1" 2> /dev/null || break
        sleep 0.1
        kill -TERM "$1" 2> /dev/null || true
    done
    kill -KILL "$1" 2> /dev/null || true
    wait "$1" 2> /dev/null || true
}
cleanup() {
    local rc=$?
    if [ -n "$PROXY_PID" ]; then stop "$PROXY_PID"; fi
    if [ -n "$IPERF_PID" ]; then stop "$IPERF_PID"; fi
    if [ -n "$NGINX_PID" ]; then stop "$NGINX_PID"; fi
    case "$BODY_TEMP" in /dev/shm/dugong-compare.*) rm -rf "$BODY_TEMP" ;; esac
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

head -c "$SMALL" /dev/zero | tr '\0' 'd' > "$SCR/www/b100"

# Runs fetch over N copies of one URL (stdout to /dev/null, stderr to a file that must hold
# N lines `200 GET <target> <size>`) and prints requests=N reqs_per_sec=R from the wall time
# of the whole process: its start, parsing the URLs and connecting included. Python starts
# it: bash needs several microseconds per argument to start a program, Python about one.
cat > "$SCR/fetch_timer.py" << 'PY'
import os, resource, subprocess, sys, time

fetch, n, depth, url, size, err_path = sys.argv[1:7]
n, size = int(n), int(size)
# execve takes arguments up to a quarter of the stack limit, and never more than 6 MiB
soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
want = 32 << 20
if soft != resource.RLIM_INFINITY and soft < want:
    soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
room = 6 << 20 if soft == resource.RLIM_INFINITY else min(6 << 20, soft // 4)
room -= sum(len(k) + len(v) + 10 for k, v in os.environ.items()) + 4096
most = room // (len(url) + 9)
if n > most:
    print("fetch_timer: %d URLs do not fit in the arguments, running %d" % (n, most))
    n = most
args = [fetch.encode(), b"--depth", depth.encode()] + [url.encode()] * n
with open(err_path, "wb") as err:
    start = time.perf_counter()
    rc = subprocess.call(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    secs = time.perf_counter() - start
with open(err_path, "rb") as err:
    lines = err.read().splitlines()
want_line = ("200 GET /%s %d" % (url.split("/", 3)[3], size)).encode()
bad = [line for line in lines if line != want_line]
if rc != 0 or len(lines) != n or bad:
    print("fetch_timer: exit %d, %d of %d lines, first unexpected: %r"
          % (rc, len(lines), n, bad[0] if bad else None))
    sys.exit(1)
print("requests=%d seconds=%.3f reqs_per_sec=%.1f" % (n, secs, n / secs))
PY
truncate -s "$M100" "$SCR/www/m100"
truncate -s "$G1" "$SCR/www/g1"
# Into the page cache before any row reads it: the first round's 1 GiB GET otherwise measures
# the file system filling it (0.4 GB/s instead of 3). /m100 is read by the check below.
if wanted big || wanted rss || wanted tls; then cat "$SCR/www/g1" > /dev/null; fi

# A CA made for this run, and nginx's certificate from it for 127.0.0.1 and localhost.
CERTS=$SCR/tls
CA_PEM=$CERTS/ca.pem
"$BIN/make_cert" --out "$CERTS" || die "make_cert could not write $CERTS"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
TLS_PORT=$(free_port)
while [ "$TLS_PORT" = "$PORT" ]; do TLS_PORT=$(free_port); done
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root root;"
sed -e "s|@SCRATCH@|$SCR|g" -e "s|@PORT@|$PORT|g" -e "s|@BODY_TEMP@|$BODY_TEMP|g" \
    -e "s|@TLS_PORT@|$TLS_PORT|g" -e "s|@CERTS@|$CERTS|g" \
    -e "s|@USER_LINE@|$USER_LINE|g" -e "s|@ECHO_MODULE@|$ECHO_MODULE|g" \
    "$HERE/nginx.conf.in" > "$SCR/nginx.conf"
nginx -t -q -p "$SCR/" -c "$SCR/nginx.conf" -e "$SCR/logs/error.log" \
    || die "nginx rejects $SCR/nginx.conf (see $SCR/logs/error.log)"
taskset -c 0 nginx -p "$SCR/" -c "$SCR/nginx.conf" -e "$SCR/logs/error.log" &
NGINX_PID=$!
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    curl -s -o /dev/null "$BASE/b100" && break
    kill -0 "$NGINX_PID" 2> /dev/null || die "nginx exited (see $SCR/logs/error.log)"
    sleep 0.1
done
[ "$(curl -sS -f "$BASE/b100" | wc -c)" = "$SMALL" ] || die "nginx does not serve /b100"
[ "$(curl -sS -f -o /dev/null -w '%{size_download}' "$BASE/m100")" = "$M100" ] \
    || die "nginx does not serve /m100"
"$PY" -B "$HERE/pydugong_client.py" --port "$PORT" --mode verify-sink --target /sink > /dev/null \
    || die "the PUT sink does not read request bodies before answering"
TLS_BASE=https://127.0.0.1:$TLS_PORT
[ "$(curl -sS -f --cacert "$CA_PEM" "$TLS_BASE/b100" | wc -c)" = "$SMALL" ] \
    || die "nginx does not serve /b100 over TLS with the certificate from make_cert"
TLS_NEGOTIATED=$(curl -sSv --cacert "$CA_PEM" -o /dev/null "$TLS_BASE/b100" 2>&1 \
    | sed -n 's/^\* SSL connection using //p' | head -n 1)
log "nginx on 127.0.0.1:$PORT and, TLS, 127.0.0.1:$TLS_PORT (pid $NGINX_PID), scratch $SCR"

: > "$SCR/proxy.out"
taskset -c "$PROXY_CPU" "$BIN/delay_proxy" --upstream "127.0.0.1:$PORT" --rtt-ms "$RTT_MS" \
    > "$SCR/proxy.out" 2> "$LOGS/proxy.err" &
PROXY_PID=$!
PROXY_PORT=
for _ in $(seq 100); do
    PROXY_PORT=$(sed -n 's/^port=//p' "$SCR/proxy.out" || true)
    [ -n "$PROXY_PORT" ] && break
    kill -0 "$PROXY_PID" 2> /dev/null || die "delay_proxy exited (see $LOGS/proxy.err)"
    sleep 0.1
done
[ -n "$PROXY_PORT" ] || die "delay_proxy did not print its port"
[ "$(curl -sS -f "http://127.0.0.1:$PROXY_PORT/b100" | wc -c)" = "$SMALL" ] \
    || die "delay proxy does not forward"
log "delay proxy ($RTT_MS ms RTT) on 127.0.0.1:$PROXY_PORT (pid $PROXY_PID)"

# The loopback ceiling for the 1 GiB GET: iperf3's server on nginx's CPU sends (client -R)
# from memory to an iperf3 client on BIG_CPU, one TCP connection, as nginx sends the file.
if wanted big; then
    IPERF_PORT=$(free_port)
    taskset -c 0 iperf3 -s -p "$IPERF_PORT" > "$LOGS/iperf3-server.log" 2>&1 &
    IPERF_PID=$!
    for _ in $(seq 100); do
        iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -n 1K > /dev/null 2>&1 && break
        kill -0 "$IPERF_PID" 2> /dev/null || die "iperf3 -s exited (see $LOGS/iperf3-server.log)"
        sleep 0.1
    done
    log "iperf3 server on 127.0.0.1:$IPERF_PORT (pid $IPERF_PID)"
fi

# ---------------------------------------------------------------- running one client
FAILS=0
FAILED_RUNS=()

# nginx's count of accepted connections (the query itself is one of them)
accepts() { curl -sS -f "$BASE/status" | awk 'NR == 3 { print $1 }' || echo -1000; }

fail_run() { # KEY ROUND LOGFILE REASON
    FAILS=$((FAILS + 1))
    FAILED_RUNS+=("$1 (round $2): $4 — see $3")
    printf '%s\t%s\tFAIL\n' "$1" "$2" >> "$RAW"
    log "FAIL $1 round $2: $4"
}

# ticks: for each CPU, "cpuN BUSY TOTAL" from /proc/stat (clock ticks since boot; busy is
# user, nice, system, irq, softirq and steal: all but idle and iowait)
ticks() {
    awk '$1 ~ /^cpu[0-9]+$/ { t = 0; for (i = 2; i <= 9; i++) t += $i; print $1, t - $5 - $6, t }' \
        /proc/stat
}
# busy_share BEFORE AFTER CPU: CPU's busy share of the span between two ticks readings, in %
busy_share() {
    awk -v c="cpu$3" 'BEGIN { n = 0 } $1 == c { b[n] = $2; t[n] = $3; n++ }
        END { if (n == 2 && t[1] > t[0]) printf "%.1f\n", 100 * (b[1] - b[0]) / (t[1] - t[0]) }' \
        <(echo "$1") <(echo "$2")
}

# measure KEY ROUND PARSER CPU CMD...: runs CMD pinned to CPU with a timeout, logs its
# output, parses one figure with PARSER (a function reading the log and printing a number,
# or failing), checks that it opened exactly one connection (EXPECT_CONNS), and records
# the figure, with how busy the server's CPU (0) and the client's were meanwhile
# (KEY.busy.server, KEY.busy.client, in % of the run's wall time).
measure() {
    local key=$1 round=$2 parser=$3 cpu=$4
    shift 4
    local logf=$LOGS/$key.r$round.log a0 a1 rc=0 value t0 t1 share
    a0=$(accepts)
    t0=$(ticks)
    {
        echo "+ taskset -c $cpu $*"
        timeout -k 5 "$RUN_TIMEOUT" taskset -c "$cpu" bash -c '"$@"' client "$@" 2>&1
    } > "$logf" || rc=$?
    t1=$(ticks)
    a1=$(accepts)
    if [ "$rc" != 0 ]; then
        fail_run "$key" "$round" "$logf" "exit status $rc"
        return
    fi
    if ! value=$("$parser" "$logf") || [ -z "$value" ]; then
        fail_run "$key" "$round" "$logf" "no valid result"
        return
    fi
    if [ $((a1 - a0 - 1)) != "${EXPECT_CONNS:-1}" ]; then
        fail_run "$key" "$round" "$logf" \
            "opened $((a1 - a0 - 1)) connections, expected ${EXPECT_CONNS:-1}"
        return
    fi
    printf '%s\t%s\t%s\n' "$key" "$round" "$value" >> "$RAW"
    share=$(busy_share "$t0" "$t1" 0)
    [ -z "$share" ] || printf '%s.busy.server\t%s\t%s\n' "$key" "$round" "$share" >> "$RAW"
    share=$(busy_share "$t0" "$t1" "$cpu")
    [ -z "$share" ] || printf '%s.busy.client\t%s\t%s\n' "$key" "$round" "$share" >> "$RAW"
}

field() { # LOGFILE NAME: the value of NAME=... on the result line
    grep -o "\b$2=[0-9.]*" "$1" | tail -n 1 | cut -d= -f2
}
parse_reqs() {
    local v n
    v=$(field "$1" reqs_per_sec); n=$(field "$1" requests)
    [ -n "$v" ] && [ "${n:-0}" -gt 0 ] && echo "$v"
}
parse_bytes() {
    local v n
    v=$(field "$1" bytes_per_sec); n=$(field "$1" requests)
    [ -n "$v" ] && [ "${n:-0}" -gt 0 ] && echo "$v"
}
parse_rss() { field "$1" peak_rss_kb; }
parse_iperf() { # iperf3 -J after the log's first line: bytes/s received, all of them
    tail -n +2 "$1" | python3 -c '
import json, sys
want = int(sys.argv[1])
got = json.load(sys.stdin)["end"]["sum_received"]
if got["bytes"] < want or got["seconds"] <= 0:
    sys.exit(1)
print("%.1f" % (got["bytes"] / got["seconds"]))' "$G1"
}
parse_wrk() {
    # wrk counts a pipelined batch's responses; it reports non-2xx and socket errors
    if grep -q -E 'Non-2xx|Socket errors' "$1"; then return 1; fi
    local n
    n=$(awk '/requests in/ { print $1 }' "$1")
    [ "${n:-0}" -gt 0 ] || return 1
    awk '/^Requests\/sec:/ { print $2 }' "$1"
}
parse_curl() { # lines "<code> <bytes> <seconds>", one per transfer, from -w
    awk -v want_code="$CURL_CODE" -v want_size="$CURL_SIZE" '
        NF == 3 && $1 ~ /^[0-9]+$/ {
            n++
            if ($1 != want_code || $2 != want_size) bad = 1
            bytes += $2; secs += $3
        }
        END { if (bad || n == 0 || secs <= 0) exit 1; printf "%.1f\n", bytes / secs }
    ' "$1"
}
parse_curl_reqs() { # as parse_curl; transfers per second of the transfers' summed time_total
    awk -v want_code="$CURL_CODE" -v want_size="$CURL_SIZE" '
        NF == 3 && $1 ~ /^[0-9]+$/ {
            n++
            if ($1 != want_code || $2 != want_size) bad = 1
            secs += $3
        }
        END { if (bad || n == 0 || secs <= 0) exit 1; printf "%.1f\n", n / secs }
    ' "$1"
}
parse_connect() { field "$1" connect_ms_median; }
parse_appconnect() { # lines "<code> <bytes> <time_appconnect>", one per curl run: the median, in ms
    awk -v want_code="$CURL_CODE" -v want_size="$CURL_SIZE" '
        NF == 3 && $1 ~ /^[0-9]+$/ {
            if ($1 != want_code || $2 != want_size) bad = 1
            t[n++] = $3 * 1000
        }
        END {
            if (bad || n == 0) exit 1
            # insertion sort: n is small
            for (i = 1; i < n; i++) { v = t[i]; for (j = i - 1; j >= 0 && t[j] > v; j--) t[j + 1] = t[j]; t[j + 1] = v }
            printf "%.3f\n", (n % 2) ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2
        }
    ' "$1"
}
parse_time_rss() { # curl's transfers must be right too
    parse_curl "$1" > /dev/null || return 1
    awk -F= '/^max_rss_kb=/ { v = $2 } END { if (v == "") exit 1; print v }' "$1"; }

# Clients run as `bash -c` under taskset, so these helpers `exec` the real program (a
# timeout then kills the client itself). TIMED=1 wraps curl in GNU time (max_rss_kb=...).
us() { exec "$BIN/peer_client" --host 127.0.0.1 "$@"; }
py() { exec "$PY" -B "$HERE/pydugong_client.py" --host 127.0.0.1 "$@"; }
fetch_gets() { # N DEPTH URL SIZE: the fetch example over N copies of URL
    exec "$PY" -B "$SCR/fetch_timer.py" "$BIN/examples/fetch" "$1" "$2" "$3" "$4" "$FETCH_REPORT"
}
# curl trusts the run's CA for https URLs: TLS_ARGS=(--cacert ...) or empty
curl_tls() { TLS_ARGS=(); case "$1" in https:*) TLS_ARGS=(--cacert "$CA_PEM") ;; esac; }
curl_gets() { # N URL
    local args=() pre=()
    [ "${TIMED:-0}" = 1 ] && pre=(/usr/bin/time -f 'max_rss_kb=%M')
    for _ in $(seq "$1"); do args+=(-o /dev/null "$2"); done
    curl_tls "$2"
    exec "${pre[@]}" curl -sS "${TLS_ARGS[@]}" -w '%{http_code} %{size_download} %{time_total}\n' \
        "${args[@]}"
}
curl_puts() { # N FILE URL
    local args=()
    for _ in $(seq "$1"); do args+=(-T "$2" "$3"); done
    curl_tls "$3"
    exec curl -sS "${TLS_ARGS[@]}" -H 'Expect:' -w '%{http_code} %{size_upload} %{time_total}\n' \
        "${args[@]}"
}
curl_handshakes() { # N URL: N curl runs, one fresh connection each
    curl_tls "$2"
    for _ in $(seq "$1"); do
        curl -sS "${TLS_ARGS[@]}" -o /dev/null -w '%{http_code} %{size_download} %{time_appconnect}\n' \
            "$2" || exit 1
    done
}
export -f us py fetch_gets curl_tls curl_gets curl_puts curl_handshakes
export BIN PY HERE CA_PEM SCR FETCH_REPORT

# ---------------------------------------------------------------- the rounds
run_small_rows() { # ROUND PREFIX CPU PORT
    local r=$1 p=$2 cpu=$3 port=$4 d
    local small=(--port "$port" --target /b100 --size "$SMALL" --duration "$DURATION"
        --requests 1000000000)
    for d in 1 16 64; do
        # wrk first opens (and closes) a probe connection to each resolved address
        EXPECT_CONNS=2 measure "$p.wrk.d$d" "$r" parse_wrk "$cpu" \
            wrk -c1 -t1 -d"${DURATION}s" -s "$HERE/pipeline.lua" "http://127.0.0.1:$port/b100" -- "$d"
    done
    measure "$p.us.blocking.d1" "$r" parse_reqs "$cpu" us --mode blocking --depth 1 "${small[@]}"
    for d in 16 64; do
        measure "$p.us.cofun.d$d" "$r" parse_reqs "$cpu" us --mode cofun --depth "$d" "${small[@]}"
    done
    if [ "$p" != rtt ]; then
        measure "$p.ureq.d1" "$r" parse_reqs "$cpu" "$BIN/ureq_client" --host 127.0.0.1 "${small[@]}"
    fi
    measure "$p.py.blocking.d1" "$r" parse_reqs "$cpu" py --mode blocking "${small[@]}"
    for d in 16 64; do
        measure "$p.py.pipeline.d$d" "$r" parse_reqs "$cpu" py --mode pipeline --depth "$d" "${small[@]}"
    done
}

run_big_rows() { # ROUND
    local r=$1 c=$BIG_CPU
    local get=(--port "$PORT" --target /m100 --size "$M100" --requests "$BIG_REQS")
    local put=(--port "$PORT" --target /sink --size "$M100" --requests "$BIG_REQS")
    # One untimed 100 MiB GET (curl) before the timed ones. In two full runs on the AMD VM
    # (2026-12-02) the first big transfer after the small-GET rows, dugong's GET, measured
    # 1.5-1.8 GB/s in 8 of 10 rounds, against 2.4-3.7 GB/s when the big rows ran alone or
    # after the RTT rows: whatever the small rows leave behind is paid here, by no client.
    taskset -c "$c" curl -sS -f -o /dev/null "$BASE/m100" || die "the warm-up GET of /m100 failed"
    measure big.get.us "$r" parse_bytes "$c" us --mode get-big "${get[@]}"
    CURL_CODE=200 CURL_SIZE=$M100 measure big.get.curl "$r" parse_curl "$c" \
        curl_gets "$BIG_REQS" "$BASE/m100"
    measure big.get.py "$r" parse_bytes "$c" py --mode get-big "${get[@]}"
    measure big.put.us "$r" parse_bytes "$c" us --mode put-big "${put[@]}"
    CURL_CODE=204 CURL_SIZE=$M100 measure big.put.curl "$r" parse_curl "$c" \
        curl_puts "$BIG_REQS" "$SCR/www/m100" "$BASE/sink"
    measure big.put.py "$r" parse_bytes "$c" py --mode put-big "${put[@]}"
    # The 1 GiB file back into the page cache, untimed: on the Intel VM (2026-12-02) its pages
    # were gone again by the next round, nginx's CPU then filled them while sending, and the
    # row measured 0.75-1.6 GB/s in rounds 1-3 against 2.2-3.3 once cached (iperf3, which
    # sends from memory, never pays this).
    cat "$SCR/www/g1" > /dev/null
    measure big.g1.us "$r" parse_bytes "$c" us --mode get-big --port "$PORT" --target /g1 \
        --size "$G1" --requests 1
    EXPECT_CONNS=0 measure big.g1.iperf "$r" parse_iperf "$c" \
        iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -R -n "$G1" -J
}

run_rss_rows() { # ROUND
    local r=$1 c=$BIG_CPU
    # the trivial run is the same program and 1 MiB buffer reading a 100-byte body, so the
    # growth is what streaming 1 GiB adds
    measure rss.trivial.us "$r" parse_rss "$c" us --mode get-big --port "$PORT" \
        --target /b100 --size "$SMALL" --requests 1
    measure rss.big.us "$r" parse_rss "$c" us --mode get-big --port "$PORT" \
        --target /g1 --size "$G1" --requests 1
    measure rss.trivial.py "$r" parse_rss "$c" py --mode get-big --port "$PORT" \
        --target /b100 --size "$SMALL" --requests 1
    measure rss.big.py "$r" parse_rss "$c" py --mode get-big --port "$PORT" \
        --target /g1 --size "$G1" --requests 1
    CURL_CODE=200 CURL_SIZE=$SMALL measure rss.trivial.curl "$r" parse_time_rss "$c" \
        env TIMED=1 bash -c 'curl_gets "$@"' curl 1 "$BASE/b100"
    CURL_CODE=200 CURL_SIZE=$G1 measure rss.big.curl "$r" parse_time_rss "$c" \
        env TIMED=1 bash -c 'curl_gets "$@"' curl 1 "$BASE/g1"
}

run_tls_rows() { # ROUND
    local r=$1 c=$TLS_CPU d
    local tls=(--port "$TLS_PORT" --cacert "$CA_PEM")
    local small=("${tls[@]}" --target /b100 --size "$SMALL" --duration "$DURATION"
        --requests 1000000000)
    for d in 1 16; do
        EXPECT_CONNS=2 measure "tls.wrk.d$d" "$r" parse_wrk "$c" \
            wrk -c1 -t1 -d"${DURATION}s" -s "$HERE/pipeline.lua" "$TLS_BASE/b100" -- "$d"
    done
    measure tls.us.blocking.d1 "$r" parse_reqs "$c" us --mode blocking --depth 1 "${small[@]}"
    measure tls.us.cofun.d16 "$r" parse_reqs "$c" us --mode cofun --depth 16 "${small[@]}"
    measure tls.ureq.d1 "$r" parse_reqs "$c" "$BIN/ureq_client" --host 127.0.0.1 "${small[@]}"
    CURL_CODE=200 CURL_SIZE=$SMALL measure tls.curl.d1 "$r" parse_curl_reqs "$c" \
        curl_gets "$CURL_REQS" "$TLS_BASE/b100"

    local get=("${tls[@]}" --target /m100 --size "$M100" --requests "$BIG_REQS")
    local put=("${tls[@]}" --target /sink --size "$M100" --requests "$BIG_REQS")
    measure tls.big.get.us "$r" parse_bytes "$c" us --mode get-big "${get[@]}"
    CURL_CODE=200 CURL_SIZE=$M100 measure tls.big.get.curl "$r" parse_curl "$c" \
        curl_gets "$BIG_REQS" "$TLS_BASE/m100"
    measure tls.big.put.us "$r" parse_bytes "$c" us --mode put-big "${put[@]}"
    CURL_CODE=204 CURL_SIZE=$M100 measure tls.big.put.curl "$r" parse_curl "$c" \
        curl_puts "$BIG_REQS" "$SCR/www/m100" "$TLS_BASE/sink"

    # as run_rss_rows: the growth is what streaming 1 GiB through a TLS session adds
    measure tls.rss.trivial.us "$r" parse_rss "$c" us --mode get-big "${tls[@]}" \
        --target /b100 --size "$SMALL" --requests 1
    measure tls.rss.big.us "$r" parse_rss "$c" us --mode get-big "${tls[@]}" \
        --target /g1 --size "$G1" --requests 1

    # connect(): TCP connect and the full TLS handshake; curl: time_appconnect, the same span
    EXPECT_CONNS=$HANDSHAKES measure tls.hs.us "$r" parse_connect "$c" us --mode connect \
        "${tls[@]}" --target /b100 --size "$SMALL" --requests "$HANDSHAKES"
    EXPECT_CONNS=$HANDSHAKES CURL_CODE=200 CURL_SIZE=$SMALL measure tls.hs.curl "$r" \
        parse_appconnect "$c" curl_handshakes "$HANDSHAKES" "$TLS_BASE/b100"
}

run_fetch_rows() { # ROUND
    local r=$1 c=$FETCH_CPU d n
    for d in 1 16; do
        EXPECT_CONNS=2 measure "fetch.wrk.d$d" "$r" parse_wrk "$c" \
            wrk -c1 -t1 -d"${DURATION}s" -s "$HERE/pipeline.lua" "$BASE/b100" -- "$d"
        # as many requests as wrk made in DURATION this round, so both rows last about as long
        n=$(awk -F'\t' -v k="fetch.wrk.d$d" -v r="$r" -v s="$DURATION" \
            '$1 == k && $2 == r && $3 != "FAIL" { printf "%d\n", $3 * s }' "$RAW")
        [ "${n:-0}" -ge 1000 ] || n=$((20000 * DURATION))
        measure "fetch.cli.d$d" "$r" parse_reqs "$c" fetch_gets "$n" "$d" "$BASE/b100" "$SMALL"
    done
}

START=$(date +%s)
for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    if wanted small; then
        for cpu in $CLIENT_CPUS; do
            run_small_rows "$r" "lo.cpu$cpu" "$cpu" "$PORT"
        done
    fi
    if wanted rtt; then run_small_rows "$r" rtt "$RTT_CPU" "$PROXY_PORT"; fi
    if wanted big; then run_big_rows "$r"; fi
    if wanted rss; then run_rss_rows "$r"; fi
    if wanted tls; then run_tls_rows "$r"; fi
    if wanted fetch; then run_fetch_rows "$r"; fi
done
ELAPSED=$(($(date +%s) - START))

if ! kill -0 "$NGINX_PID" 2> /dev/null; then
    fail_run nginx 0 "$SCR/logs/error.log" "nginx died during the run"
fi

# ---------------------------------------------------------------- the report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }' || true)
ureq_version=$(awk '/^name = "ureq"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' \
    "$ROOT/Cargo.lock")
{
    echo "# dugong peer comparison$([ "$QUICK" = 1 ] && echo ' (--quick smoke test: no speed judgement)')"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); git $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2> /dev/null || echo ' (dirty)')"
    echo "- CPU: ${cpu_model:-unknown} x $NCPU; kernel $(uname -r)"
    echo "- placement: nginx worker pinned to CPU 0 (worker_cpu_affinity 01, taskset -c 0);" \
        "loopback clients pinned to CPU ${CLIENT_CPUS// / and, separately, CPU };" \
        "delay proxy ($RTT_MS ms RTT) on CPU $PROXY_CPU with its clients on CPU $RTT_CPU;" \
        "big transfers and RSS: client on CPU $BIG_CPU"
    echo "- one connection per client run (checked with nginx stub_status);" \
        "$ROUNDS interleaved round(s), ${DURATION} s per small-GET row, $BIG_REQS x 100 MiB per big row;" \
        "figure = median (min–max) over rounds; total $ELAPSED s"
    echo "- peers: $(nginx -v 2>&1 | sed 's/.*: //'), wrk ${wrk_version:-?} (pipeline.lua: batches of DEPTH)," \
        "$(curl --version | head -n 1 | awk '{ print $1, $2 }'), ureq ${ureq_version:-?} (one request at a time)," \
        "Python dugong $PYDUGONG_VERSION on $("$PY" -V 2>&1) (send_request sliding window); $(rustc -V)"
    echo "- us: bench-tools peer_client (depth 1: blocking send_request; depth 16/64: send_request_cofun," \
        "sliding window); bodies and statuses verified by every client except wrk (status only)"
    if wanted fetch; then
        echo "- fetch rows: the \`fetch\` example (release) as a user runs it, \`--depth D\` over N copies" \
            "of /b100 (N: what wrk made in the round's ${DURATION} s row), bodies to /dev/null, its stderr" \
            "report to a RAM-backed file, checked line by line; req/s = N / wall time of the process" \
            "(its start, parsing N URLs and connecting included); fetch and wrk on CPU $FETCH_CPU," \
            "the server's"
    fi
    echo
    echo "- TLS rows: the same nginx with \`listen ... ssl\` (certificate from bench-tools make_cert," \
        "no session resumption; curl negotiates $TLS_NEGOTIATED), $(nginx -V 2>&1 | grep -o 'built with OpenSSL [0-9.a-z]*' || echo 'OpenSSL ?');" \
        "clients on CPU $TLS_CPU; us and ureq: rustls (ring); curl: $CURL_REQS transfers per 100 B row" \
        "(req/s from the transfers' summed time_total); handshake: median of $HANDSHAKES fresh connections" \
        "(us: connect(), curl: time_appconnect; both TCP connect + TLS handshake)"
    echo
    "$PY" -B "$HERE/report.py" "$RAW" "$CLIENT_CPUS" "$PROXY_CPU" "$BIG_CPU" "$TLS_CPU" "$FETCH_CPU"
} | tee "$OUT/report.md"

if [ "$FAILS" -gt 0 ]; then
    echo
    echo "FAILED: $FAILS client run(s):"
    printf '  %s\n' "${FAILED_RUNS[@]}"
    exit 1
fi
log "done in $ELAPSED s; report in $OUT/report.md, raw figures in $RAW, logs in $LOGS"
