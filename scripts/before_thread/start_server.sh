#!/usr/bin/env bash
# Stage 1 (before_thread): serve box 1 (boxes/1) with the blocking, one-client-at-a-time server.
#
#   scripts/before_thread/start_server.sh                       # on 127.0.0.1:60000
#   MINIBOX_ADDR=127.0.0.1:7000 scripts/before_thread/start_server.sh
#
# Runs from any folder. Builds the stage if needed and creates boxes/1 with sample files on the
# first run. Stop it with Ctrl-C. Then, in another terminal: scripts/before_thread/start_client.sh
# Extra arguments go to the server (try --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/boxes.sh"

addr="${MINIBOX_ADDR:-127.0.0.1:60000}"
bin="$(build_stage before_thread)"
dir="$(sample_box 1)"
exec "$bin/server" --dir "$dir" --listen "$addr" "$@"
