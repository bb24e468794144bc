#!/usr/bin/env bash
# Starts box 1 of the two-box setup on this machine: the folder boxes/1 of the repository,
# served on 127.0.0.1:60001 and kept in sync with box 2 (scripts/with_sync/start_box2.sh) on
# 127.0.0.1:60002. Runnable from anywhere; builds with_sync first if it is not up to date.
# Extra arguments go to with_sync, e.g. `start_box1.sh --interval 1`. Stop it with Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p with_sync
mkdir -p "$root/boxes/1"
exec "${CARGO_TARGET_DIR:-$root/target}/release/with_sync" --dir "$root/boxes/1" --name box1 \
    --listen 127.0.0.1:60001 --peer 127.0.0.1:60002 "$@"
