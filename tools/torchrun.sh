#!/usr/bin/env bash
# Runs a tools/ script under torchrun, NPROC processes on each machine (one per GPU; on a machine
# without GPUs, CPU processes that talk over gloo), with --launcher pytorch:
#
#   tools/torchrun.sh SCRIPT NPROC [SCRIPT arguments]
#
# Several machines: run it on each with the same NNODES, MASTER_ADDR and PORT, and NODE_RANK
# 0..NNODES-1 (0 on the machine at MASTER_ADDR). PYTHON defaults to the install.sh virtualenv.
#
# torchrun passes SIGTERM and SIGUSR1 on to the processes (a preemption: each checkpoints the
# iteration in flight and exits with 75; torchrun then exits with 1 and lists the ranks' 75s),
# and kills them 30 seconds later (TORCH_ELASTIC_SHUTDOWN_TIMEOUT sets that). The signals are
# chosen through torchrun's PET_SIGNALS_TO_HANDLE, which an older torchrun (torch 2.1) ignores:
# it passes on SIGTERM, SIGINT, SIGHUP and SIGQUIT but not SIGUSR1.
set -euo pipefail
SCRIPT=$1
NPROC=$2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_PYTHON="${MMDSNET_VENV:-$ROOT/.venv}/bin/python"
[ -x "$VENV_PYTHON" ] || VENV_PYTHON=python

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
PET_SIGNALS_TO_HANDLE="${PET_SIGNALS_TO_HANDLE:-SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1}" \
exec "${PYTHON:-$VENV_PYTHON}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
