#!/usr/bin/env bash
# Distributed evaluation, NPROC processes on each machine (see tools/torchrun.sh for several
# machines: NNODES, NODE_RANK, MASTER_ADDR, PORT):
#
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" test.py "$3" "$1" "$2" "${@:4}"
