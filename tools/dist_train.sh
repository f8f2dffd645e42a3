#!/usr/bin/env bash
# Distributed training, NPROC processes on each machine (see tools/torchrun.sh for several
# machines: NNODES, NODE_RANK, MASTER_ADDR, PORT):
#
#   tools/dist_train.sh CONFIG NPROC [tools/train.py options]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" train.py "$2" "$1" "${@:3}"
