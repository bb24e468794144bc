#!/usr/bin/env bash
# minibox benchmark: download rates on loopback, printed as a table.
#
# A benchmark, not a test: it is not part of .ci/run. It builds the release binaries, makes a
# test file (1 GiB by default) in a temporary folder under /tmp, starts the release `server` on
# 127.0.0.1 (port 0; the port is read from its announce line), and runs each case. Every timed
# download goes into a fresh client box; `sync` runs before each one so that the disk's
# write-back of the previous run does not slow the next. Everything is removed at the end.
#
# Cases (one function each; add more as `case_*` functions and call them at the bottom):
#   case_tcp_vs_udp    download TCP and download UDP of the same file, alternating, median of
#                      $BENCH_RUNS runs each; fails (exit 1) if UDP < $BENCH_MIN_RATIO x TCP.
#   case_udp_lan_block download UDP with LAN-sized blocks (1448 bytes) forced on the server, to
#                      show what the block size costs on loopback (informative, never fails).
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
    rm -rf "$WORK"
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

# download TRANSPORT: one timed download of big.bin into a fresh client box; sets SECS.
# (Results go through globals, not stdout: a $(...) subshell would lose RUN and RESULTS.)
RUN=0
SECS=""
download() {
    local transport=$1
    RUN=$((RUN + 1))
    local box="$WORK/client-$RUN-$transport"
    sync
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(printf 'download %s big.bin\n' "$transport" |
        timeout 300 "$BIN/client" --dir "$box" --peer "$ADDR" --json)
    t1=$(date +%s.%N)
    if ! grep -q '"ok":true' <<<"$out" || ! grep -q "\"md5\":\"$SOURCE_MD5\"" <<<"$out"; then
        log "download $transport failed: $out"
        exit 1
    fi
    cmp -s "$WORK/source/big.bin" "$box/big.bin" || {
        log "download $transport: the copy differs from the source"
        exit 1
    }
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rate() { awk -v mib="$SIZE_MIB" -v s="$1" 'BEGIN { printf "%.1f", mib / s }'; }

# record CASE TRANSPORT BLOCK TIMES...: adds a row to the results table; sets MED.
MED=""
record() {
    local name=$1 transport=$2 block=$3
    shift 3
    MED=$(median "$@")
    RESULTS+=("$name|$transport|$block|$MED|$(rate "$MED")|$*")
}

case_tcp_vs_udp() {
    start_server
    local tcp=() udp=()
    for i in $(seq "$RUNS"); do
        download TCP
        tcp+=("$SECS")
        download UDP
        udp+=("$SECS")
        log "  run $i: TCP ${tcp[-1]} s, UDP ${udp[-1]} s"
    done
    local tcp_med udp_med ratio
    record tcp-vs-udp TCP stream "${tcp[@]}"
    tcp_med=$MED
    record tcp-vs-udp UDP 32768 "${udp[@]}"
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
    local udp=()
    for i in $(seq "$RUNS"); do
        download UDP
        udp+=("$SECS")
        log "  run $i: UDP (1448-byte blocks) ${udp[-1]} s"
    done
    record udp-lan-block UDP 1448 "${udp[@]}"
    stop_server
}

print_table() {
    printf '\nminibox bench: %s MiB file on loopback, %s runs per row, median shown\n' "$SIZE_MIB" "$RUNS"
    printf '%-14s %-9s %-7s %9s %9s  %s\n' case transport block "median s" "MiB/s" "runs (s)"
    local row
    for row in "${RESULTS[@]}"; do
        IFS='|' read -r c t b m r all <<<"$row"
        printf '%-14s %-9s %-7s %9s %9s  %s\n' "$c" "$t" "$b" "$m" "$r" "$all"
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

print_table
if [[ $FAILED -ne 0 ]]; then
    printf 'FAIL: UDP is slower than %s x TCP\n' "$MIN_RATIO"
    exit 1
fi
