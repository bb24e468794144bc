#!/usr/bin/env bash
# The minibox demo, in one command: builds with_sync, starts two boxes on this machine in a
# temporary folder, makes changes on both sides (a new file, an edit, a delete, and a conflict:
# box1 goes offline and both edit the same file), shows both boxes converge, checks what they
# converged to (the conflict copy on both sides, the replaced and deleted bytes in the trash),
# then stops both peers with SIGTERM.
#
# Needs only the Rust toolchain and bash. Exits non-zero if anything is not as it should be.
# MINIBOX_BIN_DIR=DIR uses the with_sync binary in DIR instead of building one (the tests point
# it at their debug build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
interval=1          # seconds between sync rounds
limit=30            # seconds to wait for anything

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

if [ -n "${MINIBOX_BIN_DIR:-}" ]; then
    bin="$MINIBOX_BIN_DIR/with_sync"
    [ -x "$bin" ] || { echo "no with_sync in MINIBOX_BIN_DIR=$MINIBOX_BIN_DIR" >&2; exit 1; }
else
    say "Building with_sync (release)"
    cargo build --release --manifest-path "$root/Cargo.toml" -p with_sync
    bin="${CARGO_TARGET_DIR:-$root/target}/release/with_sync"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/minibox-demo.XXXXXX")"
pid1='' pid2=''
cleanup() {
    for pid in $pid1 $pid2; do kill -9 "$pid" 2>/dev/null || true; done
    # Reaped before the folder goes: a peer still dying could write into it.
    for pid in $pid1 $pid2; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A port nobody listens on: probe random ones with bash's /dev/tcp.
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# start NAME LISTEN PEER: runs a peer in the background, waits for its "minibox: serving … on
# ADDR" line and sets `addr` to ADDR and `pid` to its process id. Not run in $(…): the peer must
# be a child of this shell, which is the one that stops and waits for it. Its stderr (one
# "round done" line per round, thanks to RUST_LOG) goes to $work/NAME.err.
start() {
    local name=$1 listen=$2 peer=$3
    # Made here, not by the peer's redirection: that happens in the background, and reading a
    # file that is not there yet would fail the pipeline below (and, with set -e, the demo).
    : >"$work/$name.err"
    RUST_LOG=with_sync=info "$bin" --dir "$work/$name" --name "$name" --listen "$listen" \
        --peer "$peer" --interval "$interval" </dev/null >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    for _ in $(seq $((limit * 10))); do
        addr=$(sed -n 's/^minibox: serving .* on //p' "$work/$name.err" | head -1)
        if [ -n "$addr" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$work/$name.err" >&2
    return 1
}

# stop PID NAME: SIGTERM, then waits; fails the demo unless the peer exits 0.
stop() {
    local status=0
    kill -TERM "$1"
    wait "$1" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "$2 did not stop cleanly (exit status $status)" >&2
        exit 1
    fi
}

# What a box holds, one line per file or folder: permission bits, size, checksum, path. (A file
# the peers move away while this looks is left out, quietly: the next look will see.)
tree() {
    (cd "$1" && find . -path ./.minibox -prune -o ! -name . -print 2>/dev/null | LC_ALL=C sort |
        while IFS= read -r p; do
            if [ -d "$p" ]; then
                printf '  %s  %26s  %s/\n' "$(ls -ld "$p" | cut -c1-10)" "" "${p#./}"
            else
                read -r sum size < <(cksum <"$p" 2>/dev/null) || continue
                printf '  %s  %6s B  cksum %-10s  %s\n' "$(ls -ld "$p" | cut -c1-10)" \
                    "$size" "$sum" "${p#./}"
            fi
        done)
}

# Waits until both boxes hold the same tree; fails the demo otherwise.
converge() {
    for _ in $(seq $((limit * 5))); do
        if [ "$(tree "$work/box1")" = "$(tree "$work/box2")" ]; then
            return 0
        fi
        sleep 0.2
    done
    echo "The boxes did not converge within ${limit}s:" >&2
    diff <(tree "$work/box1") <(tree "$work/box2") >&2 || true
    exit 1
}

rounds() { grep -c 'round done' "$work/$1.err" || true; }

# Waits until each peer has finished two more rounds: then each has pulled the other's latest
# state and recorded that they agree, so a delete made next is a delete, not a file the other
# side has not seen yet.
settle() {
    local m1 m2
    m1=$(rounds box1) m2=$(rounds box2)
    for _ in $(seq $((limit * 5))); do
        if [ "$(rounds box1)" -ge $((m1 + 2)) ] && [ "$(rounds box2)" -ge $((m2 + 2)) ]; then
            return 0
        fi
        sleep 0.2
    done
    echo "The peers stopped doing rounds" >&2
    exit 1
}

show() {
    echo "box1 ($work/box1):"
    tree "$work/box1"
    echo "box2 ($work/box2):"
    tree "$work/box2"
}

say "Two boxes with different contents"
mkdir -p "$work/box1/docs" "$work/box2/photos/empty-album"
echo "Quarterly report, first draft." >"$work/box1/docs/report.txt"
echo "buy milk" >"$work/box1/todo.txt"
echo "meeting at 10" >"$work/box1/plan.txt"
printf '#!/bin/sh\necho hello from minibox\n' >"$work/box2/hello.sh"
chmod 755 "$work/box2/hello.sh"
echo "a picture of a cat" >"$work/box2/photos/cat.txt"
show

say "Starting box1 and box2 (a sync round every ${interval}s)"
port1=$(free_port)
start box2 127.0.0.1:0 "127.0.0.1:$port1"
addr2=$addr pid2=$pid
start box1 "127.0.0.1:$port1" "$addr2"
addr1=$addr pid1=$pid
echo "box1 serves on $addr1 (pid $pid1), box2 on $addr2 (pid $pid2)"
converge
settle
say "Converged: both boxes hold the union (bits and empty folders too)"
show

# What the changes below will replace or delete, to find it in a trash afterwards.
cp "$work/box1/docs/report.txt" "$work/old-report.txt"
cp "$work/box1/todo.txt" "$work/old-todo.txt"

say "box1 goes offline (SIGTERM); both sides change things meanwhile"
stop "$pid1" box1
pid1=''
echo "  box1: new file docs/idea.txt"
echo "an idea" >"$work/box1/docs/idea.txt"
echo "  box1: deletes todo.txt"
rm "$work/box1/todo.txt"
echo "  box1: edits plan.txt"
echo "meeting moved to 11 (box1)" >"$work/box1/plan.txt"
sleep 1 # so that box2's edit below is the newer one, by the clock
echo "  box2: edits docs/report.txt"
echo "Second draft, by box2." >>"$work/box2/docs/report.txt"
echo "  box2: edits plan.txt too: a conflict (box2's edit is the newer one)"
echo "meeting cancelled (box2)" >"$work/box2/plan.txt"

say "box1 comes back on the same port"
start box1 "127.0.0.1:$port1" "$addr2"
pid1=$pid
converge
settle
say "Converged again"
show

say "Checking what they converged to"
failed=0
check() {
    local what=$1
    shift
    if "$@"; then
        echo "  ok: $what"
    else
        echo "  FAILED: $what" >&2
        failed=1
    fi
}
# The one file in box B's trash whose path ends in NAME and whose bytes are those of FILE.
in_trash() {
    local b=$1 name=$2 want=$3 f
    while IFS= read -r f; do
        cmp -s "$f" "$want" && return 0
    done < <(find "$work/$b/.minibox/trash" -type f -path "*/$name" 2>/dev/null)
    return 1
}
same_text() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
one_file() { [ "$#" -eq 1 ] && [ -e "$1" ]; }
for b in box1 box2; do
    copies=("$work/$b"/plan.conflict-box1-*.txt)
    check "$b: exactly one conflict copy of plan.txt, named after box1 and its time" \
        one_file "${copies[@]}"
    check "$b: the conflict copy holds box1's edit" \
        same_text "${copies[0]}" "meeting moved to 11 (box1)"
    check "$b: plan.txt holds box2's newer edit" \
        same_text "$work/$b/plan.txt" "meeting cancelled (box2)"
    check "$b: docs/idea.txt arrived" same_text "$work/$b/docs/idea.txt" "an idea"
    check "$b: todo.txt stays deleted" [ ! -e "$work/$b/todo.txt" ]
done
check "box1's trash has the report as it was before box2's edit" \
    in_trash box1 docs/report.txt "$work/old-report.txt"
check "box2's trash has todo.txt, deleted on box1" in_trash box2 todo.txt "$work/old-todo.txt"
[ "$failed" -eq 0 ] || { echo "The demo did not end as it should." >&2; exit 1; }

echo
echo "The conflict: the newer version keeps the name, the other is kept as a copy on both sides:"
for f in "$work"/box1/plan*; do
    printf '  %-45s %s\n' "${f#"$work"/box1/}:" "$(cat "$f")"
done
echo
echo "What sync replaced or deleted is in each box's trash, not gone:"
for b in box1 box2; do
    (cd "$work/$b/.minibox/trash" && find . -type f | LC_ALL=C sort | sed "s|^\./|  $b/.minibox/trash/|")
done
echo
echo "Every sync action is logged, one line each (box2's .minibox/log):"
{ grep -F $'\tsync ' "$work/box2/.minibox/log" || true; } | cut -f2- | sed 's/^/  /'

say "Stopping both peers with SIGTERM"
stop "$pid1" box1
pid1=''
stop "$pid2" box2
pid2=''
echo "Both stopped cleanly (exit status 0)."
echo "Try it yourself with scripts/with_sync/start_box1.sh and start_box2.sh."
