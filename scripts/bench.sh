#!/usr/bin/env bash
# minibox benchmark: download rates on loopback, printed as a table.
#
# A benchmark, not a test: it is not part of .ci/run. It builds the release binaries, makes a
# test file (1 GiB by default) in a temporary folder under /tmp, starts the release `server` on
# 127.0.0.1 (port 0; the port is read from its announce line), and runs each case. Before the
# timed runs the server hashes the file once (its MD5 cache then serves every transfer). Every
# timed download goes into a fresh client box; `sync` runs before each one so that the disk's
# write-back of the previous run does not slow the next. Everything is removed at the end.
#
# Each row shows the median wall time and rate, and the median CPU seconds (user + system) the
# client and the server spent per download.
#
# Cases (one function each; add more as `case_*` functions and call them at the bottom):
#   case_tcp_vs_udp    download TCP and download UDP of the same file, alternating, median of
#                      $BENCH_RUNS runs each; fails (exit 1) if UDP < $BENCH_MIN_RATIO x TCP.
#   case_udp_lan_block download UDP with LAN-sized blocks (1448 bytes) forced on the server, to
#                      show what the block size costs on loopback (informative, never fails).
#   case_memory        the three downloads again into client boxes in memory (/dev/shm), each
#                      deleted after its run: the disk out of the picture (informative).
#
# Environment: BENCH_SIZE_MIB (1024), BENCH_RUNS (3), BENCH_MIN_RATIO (0.5).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
MIN_RATIO=${BENCH_MIN_RATIO:-0.5}
BIN=target/release

WORK=$(mktemp -d /tmp/minibox-bench.XXXXXX)
SERVER_PID=""
RESULTS=()   # rows: "case|transport|block|median_s|MiB/s|runs"
FAILED=0

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK" "/dev/shm/$(basename "$WORK")"-client-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# start_server [ENV=VALUE...]: starts the release server on the source box, sets SERVER_PID and
# ADDR from its announce line (waits at most 20 s).
start_server() {
    stop_server
    local err="$WORK/server.$RANDOM.err"
    env "$@" "$BIN/server" --dir "$WORK/source" --listen 127.0.0.1:0 2>"$err" &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 200); do
        ADDR=$(sed -n 's/^minibox: serving .* on \(.*\)$/\1/p' "$err" | head -n1)
        [[ -n "$ADDR" ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "the server did not announce its address:"
    cat "$err" >&2
    exit 1
}

# server_cpu: CPU seconds (user + system) the server has used so far.
server_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

# download TRANSPORT [ROOT]: one timed download of big.bin into a fresh client box under ROOT
# (default: the work folder; a box under another ROOT is deleted after the run). Sets SECS (wall
# time), CPU_CLIENT and CPU_SERVER (CPU seconds each side spent on it: unlike wall time, these
# hardly change when other programs share the machine).
# (Results go through globals, not stdout: a $(...) subshell would lose RUN and RESULTS.)
RUN=0
SECS="" CPU_CLIENT="" CPU_SERVER=""
download() {
    local transport=$1 root=${2:-$WORK}
    RUN=$((RUN + 1))
    local box="$root/$(basename "$WORK")-client-$RUN-$transport"
    sync
    local t0 t1 s0 s1 out
    s0=$(server_cpu)
    t0=$(date +%s.%N)
    local TIMEFORMAT='%U %S'
    { time (printf 'download %s big.bin\n' "$transport" |
        timeout 300 "$BIN/client" --dir "$box" --peer "$ADDR" --json >"$WORK/out.json"); } \
        2>"$WORK/cpu.txt" || true
    t1=$(date +%s.%N)
    s1=$(server_cpu)
    out=$(cat "$WORK/out.json")
    if ! grep -q '"ok":true' <<<"$out" || ! grep -q "\"md5\":\"$SOURCE_MD5\"" <<<"$out"; then
        log "download $transport failed: $out"
        exit 1
    fi
    cmp -s "$WORK/source/big.bin" "$box/big.bin" || {
        log "download $transport: the copy differs from the source"
        exit 1
    }
    [[ "$root" == "$WORK" ]] || rm -rf "$box"
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    CPU_CLIENT=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/cpu.txt")
    CPU_SERVER=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rate() { awk -v mib="$SIZE_MIB" -v s="$1" 'BEGIN { printf "%.1f", mib / s }'; }

# Per-row measurements, filled by measure and emptied by record.
TIMES=() CLIENT_CPUS=() SERVER_CPUS=()
measure() {
    download "$@"
    TIMES+=("$SECS")
    CLIENT_CPUS+=("$CPU_CLIENT")
    SERVER_CPUS+=("$CPU_SERVER")
}

# record CASE TRANSPORT BLOCK: adds a row for the measurements so far (medians); sets MED (the
# median wall time) and empties the measurements.
MED=""
record() {
    MED=$(median "${TIMES[@]}")
    RESULTS+=("$1|$2|$3|$MED|$(rate "$MED")|$(median "${CLIENT_CPUS[@]}")|$(median "${SERVER_CPUS[@]}")|${TIMES[*]}")
    TIMES=() CLIENT_CPUS=() SERVER_CPUS=()
}

# warm_up: has the server hash big.bin once (hash verify), so that no timed run pays for the
# server's first MD5 and every transfer, TCP or UDP, finds it in the server's cache.
warm_up() {
    printf 'hash verify big.bin\n' |
        "$BIN/client" --dir "$WORK/warm-up" --peer "$ADDR" --json | grep -q "$SOURCE_MD5"
}

case_tcp_vs_udp() {
    start_server
    warm_up
    local tcp=() tcp_cc=() tcp_sc=() udp=() udp_cc=() udp_sc=()
    for i in $(seq "$RUNS"); do
        download TCP
        tcp+=("$SECS") tcp_cc+=("$CPU_CLIENT") tcp_sc+=("$CPU_SERVER")
        download UDP
        udp+=("$SECS") udp_cc+=("$CPU_CLIENT") udp_sc+=("$CPU_SERVER")
        log "  run $i: TCP ${tcp[-1]} s, UDP ${udp[-1]} s"
    done
    local tcp_med udp_med ratio
    TIMES=("${tcp[@]}") CLIENT_CPUS=("${tcp_cc[@]}") SERVER_CPUS=("${tcp_sc[@]}")
    record tcp-vs-udp TCP stream
    tcp_med=$MED
    TIMES=("${udp[@]}") CLIENT_CPUS=("${udp_cc[@]}") SERVER_CPUS=("${udp_sc[@]}")
    record tcp-vs-udp UDP 32768
    udp_med=$MED
    # Same bytes, so the rate ratio is the inverse ratio of times.
    ratio=$(awk -v t="$tcp_med" -v u="$udp_med" 'BEGIN { printf "%.2f", t / u }')
    RATIO_LINE="UDP/TCP rate ratio: $ratio (target >= $MIN_RATIO)"
    if awk -v r="$ratio" -v m="$MIN_RATIO" 'BEGIN { exit !(r < m) }'; then
        FAILED=1
    fi
}

case_udp_lan_block() {
    start_server MINIBOX_UDP_BLOCK=1448
    warm_up
    for i in $(seq "$RUNS"); do
        measure UDP
        log "  run $i: UDP (1448-byte blocks) ${TIMES[-1]} s"
    done
    record udp-lan-block UDP 1448
    stop_server
}

# case_memory: the same downloads into boxes in memory (/dev/shm, a tmpfs), so that the disk's
# write path, which makes most of the difference between runs above, is out of the picture and
# what is left is the transfer itself. Each box is deleted after its run (outside the timing), so
# that at most one copy sits in memory. Informative, never fails; skipped without /dev/shm.
case_memory() {
    local shm=/dev/shm
    if [[ ! -d $shm ]] || (($(df -Pk "$shm" | awk 'NR == 2 { print $4 }') < 3 * SIZE_MIB * 1024)); then
        log "  skipped: no room in $shm"
        return 0
    fi
    start_server
    warm_up
    local tcp=() tcp_cc=() tcp_sc=() udp=() udp_cc=() udp_sc=()
    for i in $(seq "$RUNS"); do
        download TCP "$shm"
        tcp+=("$SECS") tcp_cc+=("$CPU_CLIENT") tcp_sc+=("$CPU_SERVER")
        download UDP "$shm"
        udp+=("$SECS") udp_cc+=("$CPU_CLIENT") udp_sc+=("$CPU_SERVER")
        log "  run $i: TCP ${tcp[-1]} s, UDP ${udp[-1]} s (boxes in memory)"
    done
    TIMES=("${tcp[@]}") CLIENT_CPUS=("${tcp_cc[@]}") SERVER_CPUS=("${tcp_sc[@]}")
    record memory TCP stream
    TIMES=("${udp[@]}") CLIENT_CPUS=("${udp_cc[@]}") SERVER_CPUS=("${udp_sc[@]}")
    record memory UDP 32768
    start_server MINIBOX_UDP_BLOCK=1448
    warm_up
    for i in $(seq "$RUNS"); do
        measure UDP "$shm"
        log "  run $i: UDP (1448-byte blocks) ${TIMES[-1]} s (boxes in memory)"
    done
    record memory UDP 1448
    stop_server
}

print_table() {
    printf '\nminibox bench: %s MiB file on loopback, %s runs per row, median shown\n' "$SIZE_MIB" "$RUNS"
    printf '%-14s %-9s %-6s %8s %7s %10s %10s  %s\n' case transport block "median s" "MiB/s" \
        "client CPU" "server CPU" "runs (s)"
    local row
    for row in "${RESULTS[@]}"; do
        IFS='|' read -r c t b m r cc sc all <<<"$row"
        printf '%-14s %-9s %-6s %8s %7s %10s %10s  %s\n' "$c" "$t" "$b" "$m" "$r" "$cc" "$sc" "$all"
    done
    printf '%s\n' "$RATIO_LINE"
    printf 'machine: %s cores, load average %s (other work on the machine slows every row)\n' \
        "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

log "building the release binaries..."
cargo build --release --quiet -p before_thread --bins
mkdir -p "$WORK/source"
log "making a $SIZE_MIB MiB file in $WORK..."
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/source/big.bin"
SOURCE_MD5=$(md5sum "$WORK/source/big.bin" | cut -d' ' -f1)
RATIO_LINE=""

log "case tcp-vs-udp"
case_tcp_vs_udp
log "case udp-lan-block"
case_udp_lan_block
log "case memory"
case_memory

print_table
if [[ $FAILED -ne 0 ]]; then
    printf 'FAIL: UDP is slower than %s x TCP\n' "$MIN_RATIO"
    exit 1
fi
