#!/usr/bin/env bash
# Starts box 2 of the two-box setup on this machine: the folder boxes/2 of the repository,
# served on 127.0.0.1:60002 and kept in sync with box 1 (scripts/with_sync/start_box1.sh) on
# 127.0.0.1:60001. Runnable from anywhere; builds with_sync first if it is not up to date.
# Extra arguments go to with_sync, e.g. `start_box2.sh --interval 1`. Stop it with Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p with_sync
mkdir -p "$root/boxes/2"
exec "${CARGO_TARGET_DIR:-$root/target}/release/with_sync" --dir "$root/boxes/2" --name box2 \
    --listen 127.0.0.1:60002 --peer 127.0.0.1:60001 "$@"
