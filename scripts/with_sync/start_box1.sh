#!/usr/bin/env bash
# Stage 3 (with_sync): box 1 (boxes/1), served on 127.0.0.1:60001 and kept in sync with box 2
# (scripts/with_sync/start_box2.sh) on 127.0.0.1:60002. On a terminal it runs the shell too
# (type help; sync, status, conflicts, trash list, trash restore PATH).
#
#   scripts/with_sync/start_box1.sh
#   scripts/with_sync/start_box1.sh --interval 1
#   MINIBOX_BOX1_ADDR=127.0.0.1:7001 MINIBOX_BOX2_ADDR=127.0.0.1:7002 scripts/with_sync/start_box1.sh
#
# Runs from any folder. Builds the stage if needed (cargo shows its progress) and creates
# boxes/1 with the sample files of the earlier stages on the first run. Extra arguments go to
# with_sync. Leave with quit or Ctrl-D (or Ctrl-C when it runs without a terminal).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/boxes.sh"

me="${MINIBOX_BOX1_ADDR:-127.0.0.1:60001}"
peer="${MINIBOX_BOX2_ADDR:-127.0.0.1:60002}"
bin="$(build_stage with_sync)"
dir="$(sample_box 1)"
exec "$bin/with_sync" --dir "$dir" --name box1 --listen "$me" --peer "$peer" "$@"
