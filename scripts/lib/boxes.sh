# Shared by the start scripts: find the repository, build a stage, make the sample boxes.
# Sourced, not run: `source "$(dirname "${BASH_SOURCE[0]}")/../lib/boxes.sh"`.
#
# After sourcing, MINIBOX_ROOT is the repository's root, whatever the caller's working folder.
#
# Two variables change where things are, for the tests that run the chapters' transcripts:
# MINIBOX_BIN_DIR=DIR uses the binaries in DIR instead of building; MINIBOX_BOXES=DIR puts the
# boxes in DIR instead of the repository's boxes/.

MINIBOX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MINIBOX_BOXES="${MINIBOX_BOXES:-$MINIBOX_ROOT/boxes}"

# build_stage PACKAGE: builds PACKAGE's binaries in release mode and prints the folder they are
# in. Cargo rebuilds only what changed, so this is quick after the first time; its progress goes
# to the terminal (stderr), so a first build shows what it is doing.
#
# Release, not debug: every download is hashed twice (MD5 on both sides) and copied through
# user space, and an unoptimised build does that several times slower: a multi-megabyte file
# would crawl. The tests use the debug build; the first run of a script compiles once more.
build_stage() {
    local package="$1"
    if [[ -n "${MINIBOX_BIN_DIR:-}" ]]; then
        echo "$MINIBOX_BIN_DIR"
        return
    fi
    local out="${CARGO_TARGET_DIR:-$MINIBOX_ROOT/target}/release"
    if [[ ! -d "$out" ]]; then
        echo "minibox: first build of $package (release); this takes a few minutes..." >&2
    fi
    cargo build --release --manifest-path "$MINIBOX_ROOT/Cargo.toml" -p "$package" >&2
    echo "$out"
}

# sample_box N: makes boxes/N with a few sample files, if it does not exist yet, and prints its
# path. Both boxes have a hello.txt, with different contents, so downloading it shows a replaced
# file going to .minibox/trash/ (and stage 3, syncing the two boxes, finds one conflict there:
# its chapter says so). The notes and the script are the same in both boxes; each box has a
# picture of its own; only box 1 has data/random.bin (64 KiB of random bytes). The boxes/ folder
# is git-ignored.
sample_box() {
    local n="$1"
    local dir="$MINIBOX_BOXES/$n"
    if [[ ! -d "$dir" ]]; then
        mkdir -p "$dir/notes/2026" "$dir/photos" "$dir/data"
        printf 'Hello from box %s.\n' "$n" >"$dir/hello.txt"
        printf 'Things to do:\n- read the chapter\n- try every command\n' >"$dir/notes/todo list.txt"
        printf '# Plan\n\nKeep two folders in sync.\n' >"$dir/notes/2026/plan.md"
        # A 1x1 PNG: a small binary file with a MIME type of its own.
        printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90\x77\x53\xde\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\xd0\x6b\x3b\x08\x00\x02\x5b\x01\x76\x34\x0b\xaf\x66\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' \
            >"$dir/photos/pixel $n.png"
        if [[ "$n" == 1 ]]; then
            head -c 65536 /dev/urandom >"$dir/data/random.bin"
        fi
        printf '#!/bin/sh\necho "a script from a box"\n' >"$dir/data/run.sh"
        chmod 755 "$dir/data/run.sh"
        echo "minibox: created $dir with sample files" >&2
    fi
    echo "$dir"
}
