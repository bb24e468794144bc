#!/usr/bin/env bash
# The minibox demo, in one command: builds with_sync, starts two boxes on this machine in a
# temporary folder, makes changes on both sides (a new file, an edit, a delete, a conflict),
# shows each change arrive on the other side, then stops both peers with SIGTERM.
# Needs only the Rust toolchain and bash. Exits non-zero if the boxes do not converge.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
interval=1          # seconds between sync rounds
limit=30            # seconds to wait for anything

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

say "Building with_sync (release)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p with_sync
bin="${CARGO_TARGET_DIR:-$root/target}/release/with_sync"

work="$(mktemp -d "${TMPDIR:-/tmp}/minibox-demo.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
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

# start NAME LISTEN PEER: runs a peer in the background (its pid goes to `pids`), waits for its
# "minibox: serving … on ADDR" line and sets `addr` to ADDR. Not run in $(…): the pid must be
# recorded in this shell, which is the one that stops and waits for the peers.
start() {
    local name=$1 listen=$2 peer=$3
    "$bin" --dir "$work/$name" --name "$name" --listen "$listen" --peer "$peer" \
        --interval "$interval" </dev/null >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq $((limit * 10))); do
        addr=$(sed -n 's/^minibox: serving .* on //p' "$work/$name.err" 2>/dev/null | head -1)
        if [ -n "$addr" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$work/$name.err" >&2
    return 1
}

# What a box holds, one line per file or folder: permission bits, size, checksum, path.
tree() {
    (cd "$1" && find . -path ./.minibox -prune -o ! -name . -print | LC_ALL=C sort |
        while IFS= read -r p; do
            if [ -d "$p" ]; then
                printf '  %s  %26s  %s/\n' "$(ls -ld "$p" | cut -c1-10)" "" "${p#./}"
            else
                read -r sum size < <(cksum <"$p")
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
addr2=$addr
start box1 "127.0.0.1:$port1" "$addr2"
addr1=$addr
echo "box1 serves on $addr1 (pid ${pids[1]}), box2 on $addr2 (pid ${pids[0]})"
converge
say "Converged: both boxes hold the union (bits and empty folders too)"
show

say "Changes on both sides"
echo "  box1: new file docs/idea.txt"
echo "an idea" >"$work/box1/docs/idea.txt"
echo "  box2: edits docs/report.txt"
echo "Second draft, by box2." >>"$work/box2/docs/report.txt"
echo "  box1: deletes todo.txt"
rm "$work/box1/todo.txt"
echo "  both: edit plan.txt before either has synced (box2's edit is the newer one)"
echo "meeting moved to 11 (box1)" >"$work/box1/plan.txt"
sleep 0.05
echo "meeting cancelled (box2)" >"$work/box2/plan.txt"
converge
say "Converged again"
show

say "The conflict: the newer version keeps the name, the other is kept as a copy on both sides"
for f in "$work"/box1/plan*; do
    printf '  %-45s %s\n' "${f#"$work"/box1/}:" "$(cat "$f")"
done
[ -e "$work/box1/todo.txt" ] && { echo "todo.txt came back" >&2; exit 1; }
echo
echo "What sync replaced or deleted is in each box's trash, not gone:"
for b in box1 box2; do
    (cd "$work/$b/.minibox/trash" && find . -type f | LC_ALL=C sort | sed "s|^\./|  $b/.minibox/trash/|")
done
echo
echo "Every sync action is logged, one line each (box2's .minibox/log):"
grep -F $'\tsync ' "$work/box2/.minibox/log" | cut -f2- | sed 's/^/  /'

say "Stopping both peers with SIGTERM"
[ "${#pids[@]}" -eq 2 ] || { echo "lost track of the peers" >&2; exit 1; }
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do
    status=0
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "peer $pid did not stop cleanly (exit status $status)" >&2
        exit 1
    fi
done
pids=()
echo "Both stopped cleanly (exit status 0)."
echo "Try it yourself with scripts/with_sync/start_box1.sh and start_box2.sh."

