#!/usr/bin/env bash
# Stage 1 (before_thread): the client of box 2 (boxes/2), asking the server of box 1.
#
#   scripts/before_thread/start_client.sh                       # asks 127.0.0.1:60000
#   scripts/before_thread/start_client.sh --json                # one JSON line per command
#   printf 'index longlist\n' | scripts/before_thread/start_client.sh
#   MINIBOX_ADDR=127.0.0.1:7000 scripts/before_thread/start_client.sh
#
# Runs from any folder. Builds the stage if needed and creates boxes/2 with sample files on the
# first run. Start scripts/before_thread/start_server.sh first, in another terminal; type help.
# Extra arguments go to the client.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/boxes.sh"

addr="${MINIBOX_ADDR:-127.0.0.1:60000}"
bin="$(build_stage before_thread)"
dir="$(sample_box 2)"
exec "$bin/client" --dir "$dir" --peer "$addr" "$@"
