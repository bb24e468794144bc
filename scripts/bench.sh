#!/usr/bin/env bash
# minibox benchmark: minibox against the tools a user would pick instead, side by side, in one
# run on one machine, as ratios (minibox time / reference time). Issue 7 sets the targets.
#
# A benchmark, not a test: it is not part of .ci/run. It installs its reference tools if missing
# (Debian packages rsync, socat, time), builds the release binaries, makes its data sets in a
# temporary folder under /tmp, runs each case for minibox and for the reference alternately
# (BENCH_RUNS runs each, the median reported), prints one table and exits 1 if a target is missed
# (2 if the tools cannot be installed). It talks to 127.0.0.1 only, on ports the OS picks, and
# stops every process it starts. Each run's figures go to stderr as they come. The cases of big
# files by blocks also need python3 for a relay that counts the bytes between the peers.
#
# Cases (BENCH_CASES picks a subset, space-separated; the table lists them in this order, and
# they run with the big files last, see the end of the script):
#   tcp-cached      download TCP of a big file from a stage-1 server that hashed it before,
#                   vs md5sum of the same file                                      target <= 1.25
#   tcp-fresh       the same, of a file written just before (nothing cached)        target <= 1.6
#   udp             download UDP of the cached file vs minibox's download TCP       target <= 2.0
#   first-sync-10k  with_sync --once into an empty box from a with_sync daemon, 10,000 files of
#                   4 KiB, vs rsync -a from an rsync daemon into an empty folder    target <= 0.8
#   idle-100k       with_sync --once with nothing to do, 100,000 files of ~1 KiB, state present,
#                   vs rsync -a with nothing to do                                  target <= 1.0
#   edits-1pct      a round after 1 % of the 10,000 files changed, vs rsync -a      target <= 0.5
#   memory-100k     peak RSS of the idle-100k round (/usr/bin/time -v)              target <= 64 MiB
#   idle-cpu        CPU of two with_sync peers syncing each other, 10,000 files, --interval 5,
#                   both together, over BENCH_IDLE_SECS                             target <= 2 %
#   edit-1g         1 MiB overwritten inside the big file: a with_sync --once round pulling the
#                   new version from a with_sync daemon, vs rsync -a from an rsync daemon, time
#                   (row edit-1g, target <= 0.8) and bytes on the wire (row edit-1g-bytes,
#                   target <= 2.0), the bytes counted by a relay between the peers
#   rename-1g       the big file renamed: the same two, rsync with --fuzzy --delete-after (so
#                   that it may find the old file as a basis); time (target <= 0.1), and
#                   minibox's bytes on the wire (row rename-1g-bytes, target <= 1024 KiB)
#   resume-1g       a first with_sync --once download of a new big file, killed (kill -9) half
#                   way, then run again: the bytes the second run moves, as a share of the file
#                                                                                   target <= 60 %
#   threshold-1m    where blocks start to pay (a round moves files of 1 MiB and more by
#                   blocks): 200 files of 1 MiB with 4 KiB overwritten in each, pulled by a
#                   with_sync --once round by blocks (the default) and by one told to move them
#                   whole (MINIBOX_BY_BLOCKS), bytes counted by a relay; rows threshold-1m (time,
#                   by blocks / whole, on loopback where bytes cost nothing, target <= 2.0),
#                   threshold-1m-bytes (bytes on the wire, target <= 0.25) and threshold-1m-link
#                   (the link speed below which blocks win: bytes saved / time lost, in Mbit/s,
#                   target >= 1000, so that blocks pay on gigabit Ethernet and anything slower)
#
# Method. Nothing is deleted until the end: on this machine's file system a tree deleted during
# a run slows the next file creations for minutes, so every timed run writes into a new folder.
# Before each timed run the inputs are read into the page cache again and `sync` flushes the
# previous run's writes. A 1 GiB copy is dropped from the page cache (fadvise, after `sync`)
# once it is checked, so the copies do not crowd the cache. Every result is checked outside the
# timing: JSON ok and the MD5 plus `cmp` for downloads, the file count for a first sync,
# `diff -r` for the edits.
#
# Environment:
#   BENCH_RUNS (3)         timed runs per tool and case
#   BENCH_QUICK_RUNS (5)   the same for first-sync-10k and edits-1pct (a second a run)
#   BENCH_BIG_MIB (1024)   size of the big file
#   BENCH_IDLE_SECS (60)   length of the idle-cpu window
#   BENCH_CASES (all)      e.g. BENCH_CASES="udp edits-1pct"
#   BENCH_SCALE (1)        multiplies the file counts (10,000 and 100,000), e.g. 0.05 while
#                          developing; the targets stay those of the full counts
#   BENCH_TIMEOUT (900)    seconds after which any single command is stopped and its row fails
#   BENCH_SETTLE (360)     at most this long, wait for file creation to be quick before the
#                          many-file cases (see settle_fs)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ALL_CASES="tcp-cached tcp-fresh udp first-sync-10k idle-100k edits-1pct memory-100k idle-cpu edit-1g rename-1g resume-1g threshold-1m"
# The table's rows, in order (a case may have two: time and bytes).
ALL_ROWS="tcp-cached tcp-fresh udp first-sync-10k idle-100k edits-1pct memory-100k idle-cpu edit-1g edit-1g-bytes rename-1g rename-1g-bytes resume-1g threshold-1m threshold-1m-bytes threshold-1m-link"
RUNS=${BENCH_RUNS:-3}
# The two cases that take about a second a run get more runs: their medians are steadier.
QUICK_RUNS=${BENCH_QUICK_RUNS:-$((RUNS > 5 ? RUNS : 5))}
BIG_MIB=${BENCH_BIG_MIB:-1024}
IDLE_SECS=${BENCH_IDLE_SECS:-60}
CASES=${BENCH_CASES:-$ALL_CASES}
SCALE=${BENCH_SCALE:-1}
TIMEOUT=${BENCH_TIMEOUT:-900}
SETTLE=${BENCH_SETTLE:-360}

log() { printf '%s\n' "$*" >&2; }
usage_error() {
    log "bench.sh: $*"
    exit 2
}

for knob in RUNS QUICK_RUNS BIG_MIB IDLE_SECS TIMEOUT SETTLE; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || usage_error "BENCH_$knob must be a positive integer, not \"${!knob}\""
done
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || usage_error "BENCH_SCALE must be a positive number, not \"$SCALE\""
for c in $CASES; do
    [[ " $ALL_CASES " == *" $c "* ]] || usage_error "unknown case \"$c\" in BENCH_CASES (cases: $ALL_CASES)"
done
selected() { [[ " $CASES " == *" $1 "* ]]; }

# The file counts: 10,000 and 100,000 at scale 1, 100 files per folder; 1 % of the small set edited.
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }
SMALL_N=$(scaled 10000)
MANY_N=$(scaled 100000)
EDITS_N=$(((SMALL_N + 99) / 100))

# ---------------------------------------------------------------------------------------------
# Reference tools and the build.

command -v python3 >/dev/null || usage_error "python3 is needed to make the data sets; install it and run again."
missing=()
command -v rsync >/dev/null || missing+=(rsync)
command -v socat >/dev/null || missing+=(socat)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]} with apt-get"
    as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        as_root=(sudo)
    fi
    apt_install() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; }
    apt_refresh() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update; }
    if ! { apt_install || { apt_refresh && apt_install; }; } >&2; then
        log "bench.sh: could not install ${missing[*]} with apt-get; install them and run again."
        exit 2
    fi
fi

log "building the release binaries"
cargo build --release -p before_thread -p with_sync --bins >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
for b in server client with_sync; do
    [[ -x $BIN/$b ]] || usage_error "the build did not make $BIN/$b"
done

# ---------------------------------------------------------------------------------------------
# The work folder and the processes we start.

WORK=$(mktemp -d /tmp/minibox-bench.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/out"
PIDS=()

forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}
stop_pid() {
    local pid=$1
    forget_pid "$pid"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Room for the big files: the served one, RUNS copies (tcp-cached), RUNS new files and copies
# (tcp-fresh), 2 x RUNS copies (udp); plus the trees.
need_mib=0
selected tcp-cached && need_mib=$((need_mib + RUNS * BIG_MIB))
selected tcp-fresh && need_mib=$((need_mib + 2 * RUNS * BIG_MIB))
selected udp && need_mib=$((need_mib + 2 * RUNS * BIG_MIB))
((need_mib > 0)) && need_mib=$((need_mib + BIG_MIB))
# The blocks cases: the source, minibox's and rsync's copies, and a replaced version in minibox's
# trash per edit run; a second source and a box per resume run.
selected edit-1g || selected rename-1g && need_mib=$((need_mib + (3 + RUNS) * BIG_MIB))
selected resume-1g && need_mib=$((need_mib + (1 + RUNS) * BIG_MIB))
# threshold-1m: its source and two copies of 200 MiB, and what each run sends to their trash.
selected threshold-1m && need_mib=$((need_mib + 200 * (3 + 2 * RUNS)))
need_mib=$((need_mib + 2048))
free_mib=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
if ((free_mib < need_mib)); then
    usage_error "$WORK has $free_mib MiB free, the selected cases need about $need_mib MiB"
fi

# free_port: a TCP port on 127.0.0.1 nothing listens on right now (the OS picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_minibox NAME CMD...: starts a minibox binary (with --listen 127.0.0.1:0 or a given port)
# in the background, waits for its announce line, sets DAEMON_PID and DAEMON_ADDR. Returns 1 if
# it does not announce itself within BENCH_TIMEOUT seconds.
DAEMON_PID="" DAEMON_ADDR=""
start_minibox() {
    local name=$1
    shift
    local err=$WORK/logs/$name.err
    : >"$err"
    "$@" </dev/null >"$WORK/logs/$name.out" 2>"$err" &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    DAEMON_ADDR=""
    local deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        DAEMON_ADDR=$(sed -n 's/^minibox: serving .* on \(.*\)$/\1/p' "$err" | head -n1)
        [[ -n $DAEMON_ADDR ]] && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not announce its address:"
    tail -n 5 "$err" >&2
    return 1
}

# The rsync daemon: one for the run, two modules (the small and the many-files source boxes,
# without minibox's own .minibox folder). Started on first use.
RSYNC_PORT=""
start_rsyncd() {
    [[ -n $RSYNC_PORT ]] && return 0
    local conf=$WORK/rsyncd.conf
    mkdir -p "$WORK/small/src" "$WORK/many/src" "$WORK/delta/src"
    cat >"$conf" <<EOF
use chroot = no
read only = yes
uid = $(id -un)
gid = $(id -gn)
log file = $WORK/logs/rsyncd.log
[small]
    path = $WORK/small/src
    exclude = /.minibox/
[many]
    path = $WORK/many/src
    exclude = /.minibox/
[delta]
    path = $WORK/delta/src
    exclude = /.minibox/
EOF
    local port pid
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        rsync --daemon --no-detach --config="$conf" --address=127.0.0.1 --port="$port" \
            </dev/null >>"$WORK/logs/rsyncd.out" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 100); do
            if rsync --contimeout=2 "rsync://127.0.0.1:$port/" >/dev/null 2>&1; then
                RSYNC_PORT=$port
                log "rsync daemon on 127.0.0.1:$port"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$pid"
    done
    log "the rsync daemon did not start:"
    tail -n 5 "$WORK/logs/rsyncd.out" "$WORK/logs/rsyncd.log" >&2 2>/dev/null || true
    return 1
}

# ---------------------------------------------------------------------------------------------
# Timing and figures.

now() { if [[ -n ${EPOCHREALTIME:-} ]]; then NOW=$EPOCHREALTIME; else NOW=$(date +%s.%N); fi; }

# run_timed IN OUT ERR CMD...: runs CMD (stdin IN, stdout OUT, stderr ERR) under BENCH_TIMEOUT,
# sets SECS to its wall time; returns its status. (In the background with `wait`, so that a
# SIGINT or SIGTERM stops the benchmark at once rather than after the command.)
SECS=""
run_timed() {
    local in=$1 out=$2 err=$3 t0 pid rc=0
    shift 3
    now
    t0=$NOW
    timeout "$TIMEOUT" "$@" <"$in" >"$out" 2>"$err" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    now
    forget_pid "$pid"
    SECS=$(awk -v a="$t0" -v b="$NOW" 'BEGIN { printf "%.3f", b - a }')
    ((rc != 124)) || log "$1: timed out after $TIMEOUT s (BENCH_TIMEOUT)"
    return "$rc"
}

# prepare PATH...: reads each file or tree into the page cache, then flushes pending writes.
prepare() {
    local p
    for p in "$@"; do
        if [[ -d $p ]]; then
            find "$p" -type f -exec cat {} + >/dev/null
        else
            cat "$p" >/dev/null
        fi
    done
    sync
}

# uncache FILE...: drops checked copies from the page cache (after sync; nothing is deleted).
uncache() {
    sync
    python3 -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$@"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The table: rows "case|minibox|reference|ratio|target|result".
ROWS=()
FAILED=0
# ratio_row CASE MINIBOX_MEDIAN REFERENCE_MEDIAN UNIT MAX_RATIO
ratio_row() {
    local ratio result
    ratio=$(awk -v m="$2" -v r="$3" 'BEGIN { printf "%.2f", (r > 0 ? m / r : 999) }')
    if awk -v m="$2" -v r="$3" -v t="$5" 'BEGIN { exit !(r > 0 && m / r <= t) }'; then
        result=PASS
    else
        result=FAIL
        FAILED=1
    fi
    ROWS+=("$1|$2 $4|$3 $4|$ratio|<= $5|$result")
    log "  $1: minibox $2 $4, reference $3 $4, ratio $ratio (target <= $5): $result"
}
# value_row CASE VALUE UNIT MAX
value_row() {
    local result
    if awk -v v="$2" -v t="$4" 'BEGIN { exit !(v <= t) }'; then
        result=PASS
    else
        result=FAIL
        FAILED=1
    fi
    ROWS+=("$1|$2 $3|-|-|<= $4 $3|$result")
    log "  $1: $2 $3 (target <= $4 $3): $result"
}
# floor_row CASE VALUE UNIT MIN: a figure that must be at least MIN ("any" passes: no limit).
floor_row() {
    local result=PASS
    if [[ $2 != any ]] && ! awk -v v="$2" -v t="$4" 'BEGIN { exit !(v >= t) }'; then
        result=FAIL
        FAILED=1
    fi
    ROWS+=("$1|$2 $3|-|-|>= $4 $3|$result")
    log "  $1: $2 $3 (target >= $4 $3): $result"
}
# error_row CASE MESSAGE: the case could not be measured (counts as a failed target).
error_row() {
    ROWS+=("$1|error|-|-|-|FAIL")
    FAILED=1
    log "  $1: FAIL: $2"
}

print_table() {
    printf '\nminibox bench: %s MiB big file, %s and %s files, %s runs per tool (%s for the quick cases), medians\n' \
        "$BIG_MIB" "$SMALL_N" "$MANY_N" "$RUNS" "$QUICK_RUNS"
    printf '%-15s %12s %12s %6s %11s  %s\n' case minibox reference ratio target result
    local name row c m r ratio t res
    for name in $ALL_ROWS; do
        for row in "${ROWS[@]}"; do
            IFS='|' read -r c m r ratio t res <<<"$row"
            [[ $c == "$name" ]] || continue
            printf '%-15s %12s %12s %6s %11s  %s\n' "$c" "$m" "$r" "$ratio" "$t" "$res"
        done
    done
    read -r l1 l5 l15 _ </proc/loadavg
    printf 'machine: %s cores, load average %s %s %s\n' "$(nproc)" "$l1" "$l5" "$l15"
}

# show FILE: the first lines of a failed command's output, for the log.
show() {
    head -c 600 "$1" >&2 || true
    printf '\n' >&2
}

# ---------------------------------------------------------------------------------------------
# Data sets.

# make_tree DIR COUNT MIN_BYTES MAX_BYTES SEED: COUNT files of random bytes, 100 per folder.
make_tree() {
    python3 - "$@" <<'PY'
import os, random, sys
root, count, lo, hi, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
for i in range(count):
    folder = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "f%02d.bin" % (i % 100)), "wb") as f:
        f.write(os.urandom(rng.randint(lo, hi)))
PY
}

# edit_tree DIR COUNT EDITS SEED: rewrites EDITS of make_tree's files in place with new random
# bytes of the same size. If the clock has not left the old mtime's second, the new mtime is set
# one second later, so that rsync (which compares mtimes in whole seconds) sees the edit too.
edit_tree() {
    python3 - "$@" <<'PY'
import os, random, sys
root, count, edits, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in random.Random(seed).sample(range(count), edits):
    path = os.path.join(root, "d%04d" % (i // 100), "f%02d.bin" % (i % 100))
    old = os.stat(path)
    with open(path, "r+b") as f:
        f.write(os.urandom(old.st_size))
    new = os.stat(path)
    if new.st_mtime_ns // 10**9 == old.st_mtime_ns // 10**9:
        os.utime(path, ns=(new.st_atime_ns, old.st_mtime_ns + 10**9))
PY
}

# count_files DIR: regular files outside .minibox.
count_files() { find "$1" -path "$1/.minibox" -prune -o -type f -print | wc -l; }

# ---------------------------------------------------------------------------------------------
# The big file and the stage-1 server (tcp-cached, tcp-fresh, udp).

BIG_DIR=$WORK/big/served
BIG_MD5="" SERVER_ADDR="" CLIENT_RUN=0 BIG_BROKEN=""
ensure_big() {
    [[ -n $SERVER_ADDR ]] && return 0
    [[ -z $BIG_BROKEN ]] || return 1
    BIG_BROKEN=1
    mkdir -p "$BIG_DIR" "$WORK/big/clients"
    log "making a $BIG_MIB MiB file of random bytes"
    head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$BIG_DIR/big.bin"
    BIG_MD5=$(md5sum "$BIG_DIR/big.bin" | cut -d' ' -f1)
    start_minibox server "$BIN/server" --dir "$BIG_DIR" --listen 127.0.0.1:0 || return 1
    log "server on $DAEMON_ADDR; warming its MD5 cache (hash verify big.bin)"
    printf 'hash verify big.bin\n' >"$WORK/out/warm.in"
    if ! timeout "$TIMEOUT" "$BIN/client" --dir "$WORK/big/clients/warm-up" --peer "$DAEMON_ADDR" --json \
        <"$WORK/out/warm.in" >"$WORK/out/warm.out" 2>&1 || ! grep -q "\"md5\":\"$BIG_MD5\"" "$WORK/out/warm.out"; then
        log "hash verify big.bin failed:"
        show "$WORK/out/warm.out"
        return 1
    fi
    SERVER_ADDR=$DAEMON_ADDR
}

# download TRANSPORT FILE MD5: one timed download into a new client box, checked (JSON ok, MD5,
# cmp) outside the timing, then dropped from the page cache. Sets SECS; returns 1 on failure.
download() {
    local transport=$1 file=$2 md5=$3
    CLIENT_RUN=$((CLIENT_RUN + 1))
    local box=$WORK/big/clients/$CLIENT_RUN-$transport
    local out=$WORK/out/dl.out
    printf 'download %s %s\n' "$transport" "$file" >"$WORK/out/dl.in"
    prepare "$BIG_DIR/$file"
    if ! run_timed "$WORK/out/dl.in" "$out" "$WORK/out/dl.err" \
        "$BIN/client" --dir "$box" --peer "$SERVER_ADDR" --json; then
        log "download $transport $file failed after $SECS s:"
        show "$out"
        show "$WORK/out/dl.err"
        return 1
    fi
    if ! grep -q '"ok":true' "$out" || ! grep -q "\"md5\":\"$md5\"" "$out"; then
        log "download $transport $file: unexpected answer:"
        show "$out"
        return 1
    fi
    if ! cmp -s "$BIG_DIR/$file" "$box/$file"; then
        log "download $transport $file: the copy differs from the source"
        return 1
    fi
    uncache "$box/$file"
}

# md5_ref FILE MD5: the reference, md5sum of the file in the served box. Sets SECS.
md5_ref() {
    prepare "$BIG_DIR/$1"
    run_timed /dev/null "$WORK/out/md5.out" "$WORK/out/md5.err" md5sum "$BIG_DIR/$1" || return 1
    grep -q "^$2 " "$WORK/out/md5.out"
}

case_tcp_cached() {
    ensure_big || { error_row tcp-cached "no server"; return 0; }
    local mb=() ref=() i
    for i in $(seq "$RUNS"); do
        md5_ref big.bin "$BIG_MD5" || { error_row tcp-cached "md5sum failed"; return 0; }
        ref+=("$SECS")
        download TCP big.bin "$BIG_MD5" || { error_row tcp-cached "download TCP failed"; return 0; }
        mb+=("$SECS")
        log "  run $i: md5sum ${ref[-1]} s, download TCP ${mb[-1]} s"
    done
    ratio_row tcp-cached "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 1.25
}

case_tcp_fresh() {
    ensure_big || { error_row tcp-fresh "no server"; return 0; }
    local mb=() ref=() i name
    for i in $(seq "$RUNS"); do
        # A new file (a new inode, new mtime): no hash of it is cached anywhere.
        name=new-$i.bin
        cp --reflink=never "$BIG_DIR/big.bin" "$BIG_DIR/$name"
        md5_ref "$name" "$BIG_MD5" || { error_row tcp-fresh "md5sum failed"; return 0; }
        ref+=("$SECS")
        download TCP "$name" "$BIG_MD5" || { error_row tcp-fresh "download TCP failed"; return 0; }
        mb+=("$SECS")
        uncache "$BIG_DIR/$name"
        log "  run $i: md5sum ${ref[-1]} s, download TCP ${mb[-1]} s ($name)"
    done
    ratio_row tcp-fresh "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 1.6
}

case_udp() {
    ensure_big || { error_row udp "no server"; return 0; }
    local mb=() ref=() i
    for i in $(seq "$RUNS"); do
        download TCP big.bin "$BIG_MD5" || { error_row udp "download TCP failed"; return 0; }
        ref+=("$SECS")
        download UDP big.bin "$BIG_MD5" || { error_row udp "download UDP failed"; return 0; }
        mb+=("$SECS")
        log "  run $i: download TCP ${ref[-1]} s, download UDP ${mb[-1]} s"
    done
    ratio_row udp "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 2.0
}

# ---------------------------------------------------------------------------------------------
# Big files by blocks (edit-1g, rename-1g, resume-1g): a with_sync daemon and the rsync daemon
# serve the same source box, each behind a relay of this script's own that counts the bytes
# between the peers (both ways); rsync's own --stats go to the log beside them. Before each timed
# round the daemon has hashed what changed (a `hash verify` of the file), as the rounds of a live
# pair of peers would have: a rename or an edit moves the ctime, and the daemon reads a file it
# has not hashed under its new stamp once, whoever asks.

# The relay: python3 RELAY HOST PORT STATE prints the port it listens on, forwards every
# connection to HOST:PORT untouched and without delay (TCP_NODELAY, as minibox's own sockets),
# and after each connection opens or closes writes "open closed bytes" (bytes in both directions
# so far) to STATE.
RELAY_PY=$WORK/relay.py
cat >"$RELAY_PY" <<'PY'
import os, socket, sys, threading
host, port, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
counts = {"open": 0, "closed": 0, "bytes": 0}
def save():
    with open(state + ".tmp", "w") as f:
        f.write("%(open)d %(closed)d %(bytes)d\n" % counts)
    os.replace(state + ".tmp", state)
def pump(src, dst, done):
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if n == 0:
                break
            dst.sendall(view[:n])
            with lock:
                counts["bytes"] += n
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    done()
def handle(client):
    try:
        upstream = socket.create_connection((host, port))
    except OSError:
        client.close()
        return
    # No Nagle on either side: a wire passes a small frame on at once. With it, a request that
    # waits for a small answer waited up to 40 ms more at each hop, which a real link does not add.
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    left = [2]
    def done():
        with lock:
            left[0] -= 1
            if left[0] == 0:
                counts["open"] -= 1
                counts["closed"] += 1
                save()
                client.close()
                upstream.close()
    with lock:
        counts["open"] += 1
        save()
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b, done), daemon=True).start()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
save()
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
PY

# start_relay NAME PORT: a counting relay to 127.0.0.1:PORT; sets RELAY_PORT and RELAY_STATE.
RELAY_PORT="" RELAY_STATE=""
start_relay() {
    local out=$WORK/logs/relay-$1.port
    RELAY_STATE=$WORK/logs/relay-$1.state
    python3 "$RELAY_PY" 127.0.0.1 "$2" "$RELAY_STATE" >"$out" 2>"$WORK/logs/relay-$1.err" &
    PIDS+=("$!")
    RELAY_PORT=""
    for _ in $(seq 100); do
        RELAY_PORT=$(head -n1 "$out")
        [[ -n $RELAY_PORT ]] && return 0
        sleep 0.05
    done
    log "the relay $1 did not start"
    return 1
}

# relay_bytes STATE: the bytes the relay has moved so far, once no connection is open through it
# (waits at most 10 s for the last ones to close).
relay_bytes() {
    local open closed bytes
    for _ in $(seq 200); do
        read -r open closed bytes <"$1"
        ((open == 0)) && break
        sleep 0.05
    done
    printf '%s\n' "$bytes"
}

# overwrite_mib FILE OFFSET: 1 MiB of new random bytes at OFFSET, the mtime moved on by a second
# if the clock has not left the old one's (rsync compares whole seconds).
overwrite_mib() {
    python3 - "$@" <<'PY'
import os, sys
path, at = sys.argv[1], int(sys.argv[2])
old = os.stat(path)
with open(path, "r+b") as f:
    f.seek(at)
    f.write(os.urandom(1 << 20))
new = os.stat(path)
if new.st_mtime_ns // 10**9 == old.st_mtime_ns // 10**9:
    os.utime(path, ns=(new.st_atime_ns, old.st_mtime_ns + 10**9))
PY
}

# warm_hash ADDR NAME...: has the daemon at ADDR hash each NAME (untimed, one client session),
# as its own rounds would; fails unless every one answers ok.
warm_hash() {
    local addr=$1 out=$WORK/out/warm-hash.out
    shift
    printf 'hash verify %s\n' "$@" >"$WORK/out/warm-hash.in"
    timeout "$TIMEOUT" "$BIN/client" --dir "$WORK/out/warm-hash" --peer "$addr" --json \
        <"$WORK/out/warm-hash.in" >"$out" 2>&1 &&
        (($(grep -c '"ok":true' "$out") == $#))
}

# The delta set: the source box with the big file, its daemon and relays, and a first copy of it
# in minibox's and rsync's boxes (untimed).
DELTA_SRC=$WORK/delta/src DELTA_MB=$WORK/delta/minibox DELTA_RS=$WORK/delta/rsync
DELTA_ADDR="" MB_RELAY="" MB_STATE="" RS_RELAY="" RS_STATE=""
ensure_delta() {
    start_rsyncd || return 1
    log "making a $BIG_MIB MiB file of random bytes for the delta cases"
    head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$DELTA_SRC/big.bin"
    start_source delta "$DELTA_SRC" || return 1
    DELTA_ADDR=$DAEMON_ADDR
    start_relay minibox "${DELTA_ADDR##*:}" || return 1
    MB_RELAY=127.0.0.1:$RELAY_PORT MB_STATE=$RELAY_STATE
    start_relay rsync "$RSYNC_PORT" || return 1
    RS_RELAY=$RELAY_PORT RS_STATE=$RELAY_STATE
    log "with_sync daemon on $DELTA_ADDR (relay $MB_RELAY), rsync relay on port $RS_RELAY; first copies"
    sync_once "$DELTA_MB" "$MB_RELAY" "$WORK/out/delta.out" || return 1
    mkdir -p "$DELTA_RS"
    run_timed /dev/null "$WORK/out/rsync.out" "$WORK/out/rsync.out" \
        rsync -a "rsync://127.0.0.1:$RS_RELAY/delta/" "$DELTA_RS/" || return 1
    cmp -s "$DELTA_SRC/big.bin" "$DELTA_MB/big.bin" && cmp -s "$DELTA_SRC/big.bin" "$DELTA_RS/big.bin"
}

# delta_round NAME OLD RSYNC_FLAGS...: one timed rsync and one timed with_sync --once pulling
# what changed in the source (NAME there, OLD in the copies before), each checked (cmp of NAME)
# outside the timing. Sets RS_SECS, RS_BYTES, MB_SECS, MB_BYTES (bytes on the wire, by the
# relays).
delta_round() {
    local name=$1 old=$2 before out=$WORK/out/rsync.out
    shift 2
    prepare "$DELTA_SRC/$name" "$DELTA_MB/$old" "$DELTA_RS/$old"
    before=$(relay_bytes "$RS_STATE")
    run_timed /dev/null "$out" "$out" rsync -a --stats "$@" "rsync://127.0.0.1:$RS_RELAY/delta/" "$DELTA_RS/" ||
        { show "$out"; return 1; }
    RS_SECS=$SECS RS_BYTES=$(($(relay_bytes "$RS_STATE") - before))
    log "  rsync --stats: $(grep -E '^Total bytes (sent|received)' "$out" | tr '\n' ' ')"
    [[ -e $DELTA_MB/$old ]] || old=$name
    prepare "$DELTA_SRC/$name" "$DELTA_MB/$old"
    before=$(relay_bytes "$MB_STATE")
    sync_once "$DELTA_MB" "$MB_RELAY" "$WORK/out/delta.out" || return 1
    MB_SECS=$SECS MB_BYTES=$(($(relay_bytes "$MB_STATE") - before))
    log "  with_sync: $(grep -o '"bytes":[0-9]*,"reused":[0-9]*,"moved":[0-9]*' "$WORK/out/delta.out")"
    cmp -s "$DELTA_SRC/$name" "$DELTA_RS/$name" || { log "rsync's $name differs"; return 1; }
    cmp -s "$DELTA_SRC/$name" "$DELTA_MB/$name" || { log "with_sync's $name differs"; return 1; }
}

mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }

case_edit() {
    local mb=() ref=() mbb=() refb=() i at size=$((BIG_MIB * 1024 * 1024))
    for i in $(seq "$RUNS"); do
        # Where the MiB goes: spread over the file, never on a block boundary.
        at=$((i * size / (RUNS + 1) + 12345))
        overwrite_mib "$DELTA_SRC/big.bin" "$at"
        warm_hash "$DELTA_ADDR" big.bin || { error_row edit-1g "hash verify failed"; return 0; }
        delta_round big.bin big.bin || { error_row edit-1g "a round failed"; return 0; }
        ref+=("$RS_SECS") refb+=("$(mib "$RS_BYTES")") mb+=("$MB_SECS") mbb+=("$(mib "$MB_BYTES")")
        log "  run $i: rsync $RS_SECS s $RS_BYTES B, with_sync --once $MB_SECS s $MB_BYTES B"
    done
    selected edit-1g && ratio_row edit-1g "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 0.8
    selected edit-1g && ratio_row edit-1g-bytes "$(median "${mbb[@]}")" "$(median "${refb[@]}")" MiB 2.0
    return 0
}

case_rename() {
    local mb=() ref=() mbb=() i from=big.bin to
    for i in $(seq "$RUNS"); do
        to=renamed-$i.bin
        mv "$DELTA_SRC/$from" "$DELTA_SRC/$to"
        warm_hash "$DELTA_ADDR" "$to" || { error_row rename-1g "hash verify failed"; return 0; }
        delta_round "$to" "$from" --fuzzy --delete-after || { error_row rename-1g "a round failed"; return 0; }
        grep -q '"moved":1' "$WORK/out/delta.out" || { error_row rename-1g "not a rename"; return 0; }
        ref+=("$RS_SECS") mb+=("$MB_SECS") mbb+=("$(awk -v b="$MB_BYTES" 'BEGIN { printf "%.1f", b / 1024 }')")
        log "  run $i: rsync --fuzzy $RS_SECS s $RS_BYTES B, with_sync --once $MB_SECS s $MB_BYTES B"
        from=$to
    done
    selected rename-1g && ratio_row rename-1g "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 0.1
    selected rename-1g && value_row rename-1g-bytes "$(median "${mbb[@]}")" KiB 1024
    return 0
}

case_delta() {
    if ! ensure_delta; then
        selected edit-1g && error_row edit-1g "no delta set"
        selected rename-1g && error_row rename-1g "no delta set"
        return 0
    fi
    selected edit-1g && case_edit
    selected rename-1g && case_rename
    return 0
}

# partial_size BOX: the size of the partial download in BOX (0 if none yet).
partial_size() {
    find "$1/.minibox/partial" -maxdepth 1 -type f ! -name '*.blocks' ! -name '.*' -printf '%s\n' 2>/dev/null |
        sort -n | tail -n1 | grep . || echo 0
}

# kill_half_way BOX ADDR SIZE: starts a with_sync --once into BOX and kills it (-9) once its
# partial download holds half of SIZE; returns 1 if it ended first.
kill_half_way() {
    local box=$1 pid deadline=$((SECONDS + TIMEOUT))
    "$BIN/with_sync" --once --dir "$box" --peer "$2" --json >"$WORK/out/killed.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    while (($(partial_size "$box") < $3 / 2)); do
        kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)) || break
        sleep 0.005
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget_pid "$pid"
    (($(partial_size "$box") >= $3 / 2)) && [[ ! -e $box/fresh.bin ]]
}

case_resume() {
    local src=$WORK/resume/src size=$((BIG_MIB * 1024 * 1024)) pct=() i box before kept moved
    mkdir -p "$src"
    log "making a $BIG_MIB MiB file of random bytes for the resume case"
    head -c "$size" /dev/urandom >"$src/fresh.bin"
    start_source resume "$src" || { error_row resume-1g "no source box"; return 0; }
    local addr=$DAEMON_ADDR
    start_relay resume "${addr##*:}" || { error_row resume-1g "no relay"; return 0; }
    local relay=127.0.0.1:$RELAY_PORT state=$RELAY_STATE
    warm_hash "$addr" fresh.bin || { error_row resume-1g "hash verify failed"; return 0; }
    for i in $(seq "$RUNS"); do
        box=$WORK/resume/box-$i
        prepare "$src/fresh.bin"
        kill_half_way "$box" "$relay" "$size" || { error_row resume-1g "the first download was not caught half-way"; return 0; }
        kept=$(partial_size "$box")
        before=$(relay_bytes "$state")
        sync_once "$box" "$relay" "$WORK/out/resume.out" || { error_row resume-1g "the second run failed"; return 0; }
        moved=$(($(relay_bytes "$state") - before))
        cmp -s "$src/fresh.bin" "$box/fresh.bin" || { error_row resume-1g "the resumed file differs"; return 0; }
        pct+=("$(awk -v m="$moved" -v s="$size" 'BEGIN { printf "%.1f", 100 * m / s }')")
        log "  run $i: killed with $kept B kept; the second run moved $moved B (${pct[-1]} %) in $SECS s"
        uncache "$box/fresh.bin"
    done
    value_row resume-1g "$(median "${pct[@]}")" % 60
}

# ---------------------------------------------------------------------------------------------
# Trees: a with_sync daemon serves each source box (its --peer a port where nothing listens and
# --interval 3600, so its own round fails once, quietly); the rsync daemon serves the same folder.

# start_source NAME DIR: sets DAEMON_ADDR.
start_source() {
    local dead
    dead=$(free_port)
    start_minibox "$1" "$BIN/with_sync" --dir "$2" --listen 127.0.0.1:0 \
        --peer "127.0.0.1:$dead" --interval 3600
}

# sync_once DIR PEER OUT [WRAPPER...]: a timed with_sync --once round (stdout to OUT). Sets SECS.
sync_once() {
    local dir=$1 peer=$2 out=$3
    shift 3
    if ! run_timed /dev/null "$out" "$out.err" "$@" "$BIN/with_sync" --once --dir "$dir" --peer "$peer" --json ||
        ! grep -q '"ok":true' "$out"; then
        log "with_sync --once --dir $dir failed after $SECS s:"
        show "$out"
        show "$out.err"
        return 1
    fi
}

# rsync_pull MODULE DEST [WRAPPER...]: a timed rsync -a from the daemon. Sets SECS.
rsync_pull() {
    local module=$1 dest=$2 out=$WORK/out/rsync.out
    shift 2
    if ! run_timed /dev/null "$out" "$out" "$@" rsync -a "rsync://127.0.0.1:$RSYNC_PORT/$module/" "$dest/"; then
        log "rsync -a into $dest failed after $SECS s:"
        show "$out"
        return 1
    fi
}

# expect_downloaded OUT N: the round's JSON says it downloaded N files.
expect_downloaded() {
    grep -q "\"downloaded\":$2[,}]" "$1" || {
        log "expected $2 files downloaded, got:"
        show "$1"
        return 1
    }
}

# The small set: SMALL_N files of 4 KiB, its daemon warmed by a first round into SMALL_B (kept as
# the edits case's minibox copy).
SMALL_SRC=$WORK/small/src
SMALL_ADDR="" SMALL_B="" SMALL_R="" SMALL_BROKEN=""
ensure_small() {
    [[ -n $SMALL_ADDR ]] && return 0
    [[ -z $SMALL_BROKEN ]] || return 1
    SMALL_BROKEN=1
    start_rsyncd || return 1
    log "making $SMALL_N files of 4 KiB"
    make_tree "$SMALL_SRC" "$SMALL_N" 4096 4096 1
    start_source small "$SMALL_SRC" || return 1
    log "with_sync daemon on $DAEMON_ADDR; warming it with a first round"
    sync_once "$WORK/small/warm-up" "$DAEMON_ADDR" "$WORK/out/small-warm.out" || return 1
    expect_downloaded "$WORK/out/small-warm.out" "$SMALL_N" || return 1
    log "  first round (untimed): $SECS s"
    SMALL_B=$WORK/small/warm-up
    SMALL_ADDR=$DAEMON_ADDR
}

case_first_sync() {
    ensure_small || { error_row first-sync-10k "no source box"; return 0; }
    local mb=() ref=() i dest n
    for i in $(seq "$QUICK_RUNS"); do
        dest=$WORK/small/rsync-$i
        mkdir -p "$dest"
        prepare "$SMALL_SRC"
        rsync_pull small "$dest" || { error_row first-sync-10k "rsync failed"; return 0; }
        ref+=("$SECS")
        n=$(count_files "$dest")
        [[ $n -eq $SMALL_N ]] || { error_row first-sync-10k "rsync copied $n files, not $SMALL_N"; return 0; }
        SMALL_R=$dest

        dest=$WORK/small/minibox-$i
        prepare "$SMALL_SRC"
        sync_once "$dest" "$SMALL_ADDR" "$WORK/out/first.out" || { error_row first-sync-10k "with_sync --once failed"; return 0; }
        mb+=("$SECS")
        expect_downloaded "$WORK/out/first.out" "$SMALL_N" || { error_row first-sync-10k "wrong count"; return 0; }
        n=$(count_files "$dest")
        [[ $n -eq $SMALL_N ]] || { error_row first-sync-10k "with_sync made $n files, not $SMALL_N"; return 0; }
        log "  run $i: rsync ${ref[-1]} s, with_sync --once ${mb[-1]} s"
    done
    ratio_row first-sync-10k "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 0.8
}

# same_tree A B: B holds A's files, byte for byte (.minibox left out).
same_tree() {
    diff -r --exclude=.minibox "$1" "$2" >"$WORK/out/diff.out" 2>&1 || {
        log "$2 differs from $1:"
        show "$WORK/out/diff.out"
        return 1
    }
}

case_edits() {
    ensure_small || { error_row edits-1pct "no source box"; return 0; }
    # B: the warm-up copy (state present); R: the last rsync copy, or a new one. Both catch up
    # (untimed) with whatever the source holds now.
    if [[ -z $SMALL_R ]]; then
        SMALL_R=$WORK/small/rsync-edits
        mkdir -p "$SMALL_R"
    fi
    sync_once "$SMALL_B" "$SMALL_ADDR" "$WORK/out/edits.out" || { error_row edits-1pct "with_sync --once failed"; return 0; }
    rsync_pull small "$SMALL_R" || { error_row edits-1pct "rsync failed"; return 0; }
    same_tree "$SMALL_SRC" "$SMALL_B" && same_tree "$SMALL_SRC" "$SMALL_R" ||
        { error_row edits-1pct "the copies are not in sync before the edits"; return 0; }
    local mb=() ref=() i
    for i in $(seq "$QUICK_RUNS"); do
        edit_tree "$SMALL_SRC" "$SMALL_N" "$EDITS_N" "$((100 + i))"
        prepare "$SMALL_SRC" "$SMALL_R"
        rsync_pull small "$SMALL_R" || { error_row edits-1pct "rsync failed"; return 0; }
        ref+=("$SECS")
        prepare "$SMALL_SRC" "$SMALL_B"
        sync_once "$SMALL_B" "$SMALL_ADDR" "$WORK/out/edits.out" || { error_row edits-1pct "with_sync --once failed"; return 0; }
        mb+=("$SECS")
        expect_downloaded "$WORK/out/edits.out" "$EDITS_N" || { error_row edits-1pct "wrong count"; return 0; }
        same_tree "$SMALL_SRC" "$SMALL_R" || { error_row edits-1pct "rsync missed an edit"; return 0; }
        same_tree "$SMALL_SRC" "$SMALL_B" || { error_row edits-1pct "with_sync missed an edit"; return 0; }
        log "  run $i ($EDITS_N files edited): rsync ${ref[-1]} s, with_sync --once ${mb[-1]} s"
    done
    ratio_row edits-1pct "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 0.5
}

# idle-100k and memory-100k: the same runs, each tool under /usr/bin/time -v (wall time from
# outside; the peak RSS from time's report).
MANY_SRC=$WORK/many/src
max_rss_mib() {
    awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"
}
many_error() {
    selected idle-100k && error_row idle-100k "$1"
    selected memory-100k && error_row memory-100k "$1"
    return 0
}
case_many() {
    start_rsyncd || { many_error "no rsync daemon"; return 0; }
    log "making $MANY_N files of ~1 KiB"
    make_tree "$MANY_SRC" "$MANY_N" 768 1280 2
    start_source many "$MANY_SRC" || { many_error "no source box"; return 0; }
    local addr=$DAEMON_ADDR b=$WORK/many/b r=$WORK/many/r
    log "with_sync daemon on $addr; first round into B and first rsync into R (untimed)"
    sync_once "$b" "$addr" "$WORK/out/many.out" || { many_error "first with_sync --once failed"; return 0; }
    expect_downloaded "$WORK/out/many.out" "$MANY_N" || { many_error "wrong count"; return 0; }
    log "  first with_sync --once: $SECS s"
    mkdir -p "$r"
    rsync_pull many "$r" || { many_error "first rsync failed"; return 0; }
    log "  first rsync: $SECS s"
    local mb=() ref=() mem=() i tv=$WORK/out/time-v.txt
    for i in $(seq "$RUNS"); do
        prepare "$MANY_SRC" "$r"
        rsync_pull many "$r" /usr/bin/time -v -o "$tv" || { many_error "rsync failed"; return 0; }
        ref+=("$SECS")
        log "  run $i: rsync ${ref[-1]} s, peak RSS $(max_rss_mib "$tv") MiB"
        prepare "$MANY_SRC" "$b"
        sync_once "$b" "$addr" "$WORK/out/many.out" /usr/bin/time -v -o "$tv" ||
            { many_error "with_sync --once failed"; return 0; }
        mb+=("$SECS")
        mem+=("$(max_rss_mib "$tv")")
        expect_downloaded "$WORK/out/many.out" 0 || { many_error "the round was not idle"; return 0; }
        log "  run $i: with_sync --once ${mb[-1]} s, peak RSS ${mem[-1]} MiB"
    done
    selected idle-100k && ratio_row idle-100k "$(median "${mb[@]}")" "$(median "${ref[@]}")" s 1.0
    selected memory-100k && value_row memory-100k "$(median "${mem[@]}")" MiB 64
    return 0
}

# idle-cpu: two peers, each the other's --peer, on copies of the small set (made with a local
# rsync, so they start without minibox state); measured once both report "already in sync"
# (RUST_LOG=with_sync::round=info) twice in a row. Should a later version log no "round done"
# lines at all, the window starts 4 intervals (20 s) after both peers started instead.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
rounds_done() { grep -c 'round done' "$1" || true; }
rounds_quiet() {
    grep 'round done' "$1" | tail -n 2 | grep -c 'already in sync' || true
}
case_idle_cpu() {
    local row=idle-cpu
    local p1=$WORK/idle/p1 p2=$WORK/idle/p2
    mkdir -p "$p1" "$p2"
    if [[ -n $SMALL_ADDR ]]; then
        rsync -a --exclude=/.minibox/ "$SMALL_SRC/" "$p1/"
    else
        log "making $SMALL_N files of 4 KiB"
        make_tree "$p1" "$SMALL_N" 4096 4096 3
    fi
    rsync -a "$p1/" "$p2/"
    local port2 pid1 pid2 addr1 logfilter='warn,with_sync::round=info'
    port2=$(free_port)
    start_minibox idle-p1 env RUST_LOG="$logfilter" "$BIN/with_sync" --dir "$p1" \
        --listen 127.0.0.1:0 --peer "127.0.0.1:$port2" --interval 5 ||
        { error_row "$row" "peer 1 did not start"; return 0; }
    pid1=$DAEMON_PID addr1=$DAEMON_ADDR
    start_minibox idle-p2 env RUST_LOG="$logfilter" "$BIN/with_sync" --dir "$p2" \
        --listen "127.0.0.1:$port2" --peer "$addr1" --interval 5 ||
        { error_row "$row" "peer 2 did not start"; return 0; }
    pid2=$DAEMON_PID
    log "two peers on $addr1 and $DAEMON_ADDR; waiting until both are in sync"
    local e1=$WORK/logs/idle-p1.err e2=$WORK/logs/idle-p2.err started=$SECONDS
    local deadline=$((SECONDS + 300))
    until [[ $(rounds_quiet "$e1") -eq 2 && $(rounds_quiet "$e2") -eq 2 ]]; do
        if ((SECONDS - started >= 20)) && [[ $(rounds_done "$e1") -eq 0 && $(rounds_done "$e2") -eq 0 ]]; then
            log "  (the peers log no \"round done\" lines; measuring from 20 s after their start)"
            break
        fi
        if ((SECONDS > deadline)) || ! kill -0 "$pid1" 2>/dev/null || ! kill -0 "$pid2" 2>/dev/null; then
            error_row "$row" "the peers did not settle into quiet rounds"
            tail -n 3 "$WORK/logs/idle-p1.err" "$WORK/logs/idle-p2.err" >&2
            return 0
        fi
        sleep 1
    done
    same_tree "$p1" "$p2" || { error_row "$row" "the peers are not in sync"; return 0; }
    local hz c0 c1 t0 t1 pct
    hz=$(getconf CLK_TCK)
    c0=$(($(cpu_ticks "$pid1") + $(cpu_ticks "$pid2")))
    now
    t0=$NOW
    sleep "$IDLE_SECS" &
    PIDS+=("$!")
    wait "$!"
    forget_pid "$!"
    if ! kill -0 "$pid1" 2>/dev/null || ! kill -0 "$pid2" 2>/dev/null; then
        error_row "$row" "a peer stopped during the window"
        return 0
    fi
    c1=$(($(cpu_ticks "$pid1") + $(cpu_ticks "$pid2")))
    now
    t1=$NOW
    pct=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", 100 * c / hz / (b - a) }')
    log "  $((c1 - c0)) ticks of CPU (1/$hz s) over $IDLE_SECS s, both peers: $pct % of one core"
    value_row "$row" "$pct" % 2
    stop_pid "$pid1"
    stop_pid "$pid2"
}

# ---------------------------------------------------------------------------------------------

# threshold-1m (see the top): the same edits pulled by blocks and whole, alternately.
THRESH_N=$(scaled 200)
# poke_tree DIR COUNT SEED: 4 KiB of new random bytes somewhere inside each of make_tree's files.
poke_tree() {
    python3 - "$@" <<'PY'
import os, random, sys
root, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for i in range(count):
    path = os.path.join(root, "d%04d" % (i // 100), "f%02d.bin" % (i % 100))
    with open(path, "r+b") as f:
        f.seek(rng.randrange(os.path.getsize(path) - 4096))
        f.write(os.urandom(4096))
PY
}

# tree_names COUNT: the names of make_tree's COUNT files, one a line.
tree_names() {
    local i
    for ((i = 0; i < $1; i++)); do printf 'd%04d/f%02d.bin\n' $((i / 100)) $((i % 100)); done
}

# thresh_round BOX RELAY STATE [WRAPPER...]: a timed round into BOX, checked against the source;
# sets SECS, BYTES (on the wire) and REUSED (bytes the round took from the box itself).
BYTES="" REUSED=""
thresh_round() {
    local box=$1 relay=$2 state=$3 before out=$WORK/out/thresh.out
    shift 3
    prepare "$WORK/thresh/src"
    [[ ! -d $box ]] || prepare "$box"
    before=$(relay_bytes "$state")
    sync_once "$box" "$relay" "$out" "$@" || return 1
    BYTES=$(($(relay_bytes "$state") - before))
    REUSED=$(grep -o '"reused":[0-9]*' "$out" | head -n1 | cut -d: -f2)
    expect_downloaded "$out" "$THRESH_N" && same_tree "$WORK/thresh/src" "$box"
}

case_threshold() {
    local src=$WORK/thresh/src by=$WORK/thresh/blocks whole=$WORK/thresh/whole relay state
    local addr i bs=() ws=() bb=() wb=() saved lost link
    log "making $THRESH_N files of 1 MiB"
    make_tree "$src" "$THRESH_N" 1048576 1048576 7
    start_source thresh "$src" || { error_row threshold-1m "no source box"; return 0; }
    addr=$DAEMON_ADDR
    start_relay thresh "${addr##*:}" || { error_row threshold-1m "no relay"; return 0; }
    relay=127.0.0.1:$RELAY_PORT state=$RELAY_STATE
    log "with_sync daemon on $addr (relay $relay); first copies"
    thresh_round "$by" "$relay" "$state" && thresh_round "$whole" "$relay" "$state" ||
        { error_row threshold-1m "the first copies failed"; return 0; }
    for i in $(seq "$RUNS"); do
        poke_tree "$src" "$THRESH_N" "$i"
        warm_hash "$addr" $(tree_names "$THRESH_N") || { error_row threshold-1m "hash verify failed"; return 0; }
        thresh_round "$whole" "$relay" "$state" env MINIBOX_BY_BLOCKS=$((1 << 40)) ||
            { error_row threshold-1m "the whole round failed"; return 0; }
        ((REUSED == 0)) || { error_row threshold-1m "the whole round reused $REUSED bytes"; return 0; }
        ws+=("$SECS") wb+=("$(mb "$BYTES")")
        thresh_round "$by" "$relay" "$state" || { error_row threshold-1m "the round by blocks failed"; return 0; }
        ((REUSED > 0)) || { error_row threshold-1m "the round by blocks reused nothing"; return 0; }
        bs+=("$SECS") bb+=("$(mb "$BYTES")")
        log "  run $i: whole ${ws[-1]} s ${wb[-1]} MB, by blocks ${bs[-1]} s ${bb[-1]} MB ($REUSED B reused)"
    done
    ratio_row threshold-1m "$(median "${bs[@]}")" "$(median "${ws[@]}")" s 2.0
    ratio_row threshold-1m-bytes "$(median "${bb[@]}")" "$(median "${wb[@]}")" MB 0.25
    saved=$(awk -v w="$(median "${wb[@]}")" -v b="$(median "${bb[@]}")" 'BEGIN { print w - b }')
    lost=$(awk -v b="$(median "${bs[@]}")" -v w="$(median "${ws[@]}")" 'BEGIN { print b - w }')
    link=$(awk -v s="$saved" -v l="$lost" 'BEGIN { if (l <= 0) print "any"; else printf "%.0f", s * 8 / l }')
    floor_row threshold-1m-link "$link" Mbit/s 1000
}

START=$SECONDS
log "work folder $WORK; cases: $CASES"
run_case() {
    local name=$1 fn=$2 t=$SECONDS
    log "case $name"
    "$fn"
    log "case $name: $((SECONDS - t)) s"
}
# settle_fs: waits (at most BENCH_SETTLE seconds) until creating files is as quick as it is on a
# quiet file system. On this machine's ext4, for a few minutes after many files were deleted
# (the previous bench run's clean-up, say), every new file costs ten times as much: the kernel
# skips inodes freed less than a minute or five ago, and may have to look at hundreds of
# thousands. Both tools would be measured in that state, each differently. Probes: 2000 empty
# files in a new folder each time (nothing is deleted until the end).
settle_fs() {
    local t0=$SECONDS probe=0 us
    while :; do
        probe=$((probe + 1))
        us=$(python3 - "$WORK/settle-$probe" <<'PY'
import os, sys, time
d = sys.argv[1]
os.makedirs(d)
t = time.perf_counter()
for i in range(2000):
    os.close(os.open(os.path.join(d, str(i)), os.O_CREAT | os.O_WRONLY, 0o644))
print(int((time.perf_counter() - t) / 2000 * 1e6))
PY
)
        if ((us <= 100)); then
            log "file system settled: $us us per new file"
            return 0
        fi
        if ((SECONDS - t0 >= SETTLE)); then
            log "the file system is still slow ($us us per new file) after $SETTLE s: measuring anyway"
            return 0
        fi
        log "file system busy ($us us per new file, files deleted recently?): waiting 20 s"
        sleep 20
    done
}
if selected first-sync-10k || selected edits-1pct || selected idle-100k || selected memory-100k; then
    settle_fs
fi

# The cases of many small files run first, the big files last: writing gigabytes fills the page
# cache, and every file created after that waits for the kernel to reclaim memory (measured:
# both tools' first syncs then take three to four times as long, and vary twice as much).
selected first-sync-10k && run_case first-sync-10k case_first_sync
selected edits-1pct && run_case edits-1pct case_edits
if selected idle-100k || selected memory-100k; then
    run_case "idle-100k/memory-100k" case_many
fi
selected idle-cpu && run_case idle-cpu case_idle_cpu
selected tcp-cached && run_case tcp-cached case_tcp_cached
selected tcp-fresh && run_case tcp-fresh case_tcp_fresh
selected udp && run_case udp case_udp
selected threshold-1m && run_case threshold-1m case_threshold
if selected edit-1g || selected rename-1g; then
    run_case "edit-1g/rename-1g" case_delta
fi
selected resume-1g && run_case resume-1g case_resume
log "all cases: $((SECONDS - START)) s"

print_table
exit "$FAILED"
