#!/usr/bin/env bash
# Stage 2 (with_thread): box 2 (boxes/2), serving on 127.0.0.1:60002 while its shell asks box 1
# on 127.0.0.1:60001. Both boxes run the same program; start the other one with
# scripts/with_thread/start_box1.sh in a second terminal (in either order: a shell command
# that finds its peer down says so and the shell goes on).
#
#   scripts/with_thread/start_box2.sh
#   MINIBOX_BOX1_ADDR=127.0.0.1:7001 MINIBOX_BOX2_ADDR=127.0.0.1:7002 scripts/with_thread/start_box2.sh
#
# Runs from any folder. Builds the stage if needed and creates boxes/2 with sample files on the
# first run. Leave with `quit` or Ctrl-D; Ctrl-C cancels the command that runs.
# Extra arguments go to with_thread (try --json).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/boxes.sh"

me="${MINIBOX_BOX2_ADDR:-127.0.0.1:60002}"
peer="${MINIBOX_BOX1_ADDR:-127.0.0.1:60001}"
bin="$(build_stage with_thread)"
dir="$(sample_box 2)"
exec "$bin/with_thread" --dir "$dir" --listen "$me" --peer "$peer" "$@"
