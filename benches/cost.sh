#!/usr/bin/env bash
# Where a request's time goes (the README's cost model): dugong's bench-tools peer_client
# fetching a 100-byte file from a local nginx over one connection, at depth 1 (blocking
# send_request) and depth 64 (send_request_cofun), nginx pinned to CPU 0, the client to CPU 1.
#
#   benches/cost.sh
#
# For each depth it measures, each from its own run:
#   1. CPU per request, the client's user and kernel time (GNU time) and nginx's worker
#      (utime + stime from /proc before and after), over DURATION seconds;
#   2. syscalls per request by name (strace -f -c);
#   3. the client's user-space instructions per request (valgrind cachegrind), split by the
#      compiled function they run in (inlined code counts for its caller): dugong's sans-IO
#      core (dugong::proto, with httparse), building `http` types (HeaderMap, HeaderName,
#      bytes), the rest of dugong (driver, I/O), the allocator, memcpy and friends, the
#      benchmark's own loop, and the rest (std, libc syscall stubs, ...); and the same count
#      with every `log` call compiled out (bench-tools' `log-off` feature, built into
#      target/log-off), which shows what logging costs when no logger is set.
#
# Needs nginx, strace, valgrind and GNU time (installs what is missing with apt-get).
# Environment: DURATION (seconds per timed run, 5), NO_BUILD=1 (use target/release).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$ROOT/target/cost
SCR=$OUT/run
BIN=$ROOT/target/release
DURATION=${DURATION:-5}
log() { printf '[cost %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need=()
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v strace > /dev/null || need+=(strace)
command -v valgrind > /dev/null || need+=(valgrind)
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    log "apt-get install ${need[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" > /dev/null
fi
export PATH=$PATH:/usr/sbin

if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release -p dugong-bench-tools --bin peer_client"
    (cd "$ROOT" && cargo build --release -q -p dugong-bench-tools --bin peer_client)
fi

rm -rf "$SCR"
mkdir -p "$SCR/www" "$SCR/logs"
head -c 100 /dev/zero | tr '\0' x > "$SCR/www/b100"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root root;"
cat > "$SCR/nginx.conf" << EOF
$USER_LINE
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
pid $SCR/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    client_body_temp_path $SCR/body;
    proxy_temp_path $SCR/proxy;
    fastcgi_temp_path $SCR/fastcgi;
    uwsgi_temp_path $SCR/uwsgi;
    scgi_temp_path $SCR/scgi;
    server {
        listen 127.0.0.1:$PORT;
        root $SCR/www;
    }
}
EOF
taskset -c 0 nginx -p "$SCR/" -c "$SCR/nginx.conf" -e "$SCR/logs/error.log" &
NGINX_PID=$!
trap 'kill "$NGINX_PID" 2> /dev/null; wait "$NGINX_PID" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
    [ "$(curl -s "http://127.0.0.1:$PORT/b100" | wc -c)" = 100 ] && break
    sleep 0.1
done
WORKER=$(pgrep -P "$NGINX_PID" | head -n 1)
[ -n "$WORKER" ] || die "no nginx worker (see $SCR/logs/error.log)"

# utime + stime of a process, in clock ticks
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
client() { # DEPTH, then a prefix command; runs $CLIENT (the default build)
    local depth=$1 mode=blocking
    shift
    [ "$depth" -gt 1 ] && mode=cofun
    taskset -c 1 "$@" "$CLIENT" --host 127.0.0.1 --port "$PORT" --target /b100 \
        --size 100 --mode "$mode" --depth "$depth" --duration "$DURATION" --requests 1000000000
}
requests() { sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$1" | head -n 1; }
CLIENT=$BIN/peer_client

# User instructions per request of $CLIENT at depth $1 (valgrind cachegrind), as
# "total: core N http N driver N alloc N mem N bench N other N"; $2 names the run's files.
instructions() {
    local depth=$1 run=$2 n
    client "$depth" valgrind --tool=cachegrind --cache-sim=no \
        --cachegrind-out-file="$SCR/cg.$run" > "$SCR/cg-run.$run" 2> "$SCR/cg-log.$run"
    n=$(requests "$SCR/cg-run.$run")
    cg_annotate --show=Ir --threshold=0 --auto=no "$SCR/cg.$run" > "$SCR/cg-annotate.$run"
    # "IR (PCT%)  FILE:FUNCTION", FUNCTION the compiled (outer) function: inlined code counts
    # for the function it was inlined into
    sed -n 's/^ *\([0-9,]*\) ([ 0-9.]*%)  [^:]*:\(.*\)$/\1 \2/p' \
        "$SCR/cg-annotate.$run" | awk -v n="$n" '
        {   ir = $1; gsub(",", "", ir); f = substr($0, index($0, " ") + 1)
            if (f ~ /^dugong::proto::/ || f ~ /^httparse::/) k = "core"
            else if (f ~ /^(http|bytes)::/ || f ~ /^<(http|bytes)::/ || f ~ /drop_in_place<http::/) k = "http"
            else if (f ~ /^dugong::/ || f ~ /^<dugong::/ || f ~ /drop_in_place<dugong::/) k = "driver"
            else if (f ~ /^(_int_)?(malloc|free|realloc|calloc|cfree)$/ || f ~ /^(malloc_|_int_|tcache|unlink_chunk|__rustc::__rd[la]|__rust_(alloc|dealloc|realloc))/) k = "alloc"
            else if (f ~ /^__(memcpy|memmove|memset|memcmp|memchr)/ || f ~ /^(memcpy|memmove|memset|memcmp)/) k = "mem"
            else if (f ~ /^peer_client::/) k = "bench"
            else k = "other"
            sum[k] += ir; total += ir
        }
        END { printf "%.0f:", total / n
              split("core http driver alloc mem bench other", ks, " ")
              for (i = 1; i <= 7; i++) printf " %s %.0f", ks[i], sum[ks[i]] / n }'
}

declare -A ROW
for depth in 1 64; do
    log "depth $depth: CPU time"
    before=$(ticks "$WORKER")
    client "$depth" /usr/bin/time -f 'user_s=%U sys_s=%S' > "$SCR/time.$depth" 2>&1
    after=$(ticks "$WORKER")
    n=$(requests "$SCR/time.$depth")
    read -r user sys < <(sed -n 's/^user_s=\([0-9.]*\) sys_s=\([0-9.]*\)$/\1 \2/p' "$SCR/time.$depth")
    ROW[user.$depth]=$(awk -v t="$user" -v n="$n" 'BEGIN { printf "%.2f", t * 1e6 / n }')
    ROW[sys.$depth]=$(awk -v t="$sys" -v n="$n" 'BEGIN { printf "%.2f", t * 1e6 / n }')
    ROW[nginx.$depth]=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$n" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    ROW[rate.$depth]=$(awk -v n="$n" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')

    log "depth $depth: syscalls"
    client "$depth" strace -f -c -o "$SCR/strace.$depth" > "$SCR/strace-run.$depth"
    n=$(requests "$SCR/strace-run.$depth")
    # strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall
    ROW[calls.$depth]=$(awk -v n="$n" '$4 ~ /^[0-9]+$/ && NF >= 5 {
            if ($NF == "total") total = $4; else calls[$NF] = $4 }
        END { printf "%.2f:", total / n
              for (s in calls) if (calls[s] / n >= 0.01) printf " %s %.2f", s, calls[s] / n }' \
        "$SCR/strace.$depth")

    log "depth $depth: instructions (valgrind, slow)"
    ROW[instr.$depth]=$(instructions "$depth" "$depth")
done

# Logging's cost with no logger set: the same instructions with every log call compiled out
# (bench-tools' log-off feature, in a target directory of its own).
if [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$ROOT/target/log-off/release/peer_client" ]; then
    log "cargo build --release -p dugong-bench-tools --bin peer_client --features log-off"
    (cd "$ROOT" && CARGO_TARGET_DIR=$ROOT/target/log-off cargo build --release -q \
        -p dugong-bench-tools --bin peer_client --features log-off)
fi
for depth in 1 64; do
    log "depth $depth: instructions with logging compiled out (valgrind, slow)"
    CLIENT=$ROOT/target/log-off/release/peer_client
    ROW[logoff.$depth]=$(instructions "$depth" "logoff.$depth")
    CLIENT=$BIN/peer_client
done

log "100 MiB GETs: where the body's bytes are received"
MIB=$((1024 * 1024))
truncate -s $((100 * MIB)) "$SCR/www/m100"
taskset -c 1 strace -e trace=recvfrom -o "$SCR/strace.big" "$BIN/peer_client" --host 127.0.0.1 \
    --port "$PORT" --target /m100 --size $((100 * MIB)) --mode get-big --requests 3 \
    > "$SCR/big-run"
# recvfrom(fd, "..."..., ASKED, FLAGS, NULL, NULL) = GOT; bodies are read through one 1 MiB
# buffer, the receive buffer reads ahead at most 64 KiB
BIG=$(sed -n 's/.*, \([0-9]*\), [A-Z_|0-9]*, NULL, NULL) = \([0-9]*\)$/\1 \2/p' "$SCR/strace.big" |
    awk -v mib="$MIB" '{ calls++; got += $2; if ($1 > 65536) direct += $2 }
        END { printf "%.1f%% of %.0f MiB straight into the caller'"'"'s buffer, %.1f recvfrom per MiB",
              100 * direct / got, got / mib, calls / (got / mib) }')

{
    echo "| per request | depth 1 (blocking) | depth 64 (cofunction) |"
    echo "|---|--:|--:|"
    echo "| requests/s (client on CPU 1, nginx on CPU 0) | ${ROW[rate.1]} | ${ROW[rate.64]} |"
    echo "| client user CPU (µs) | ${ROW[user.1]} | ${ROW[user.64]} |"
    echo "| client kernel CPU (µs) | ${ROW[sys.1]} | ${ROW[sys.64]} |"
    echo "| nginx worker CPU (µs) | ${ROW[nginx.1]} | ${ROW[nginx.64]} |"
    echo "| client syscalls (total: by name) | ${ROW[calls.1]} | ${ROW[calls.64]} |"
    echo "| client user instructions (total: by part) | ${ROW[instr.1]} | ${ROW[instr.64]} |"
    echo "| … with every log call compiled out | ${ROW[logoff.1]} | ${ROW[logoff.64]} |"
    echo
    echo "100 MiB GETs (3, one connection): $BIG."
} | tee "$OUT/table.md"
log "table in $OUT/table.md; raw outputs in $SCR"
