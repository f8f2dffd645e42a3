#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU:
#
#   [GPUS=16] [GPUS_PER_NODE=8] tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR \
#       [tools/train.py options]
#
# CPUS_PER_TASK (default 5) and SRUN_ARGS are passed to srun; PYTHON defaults to the install.sh
# virtualenv.
#
# Preemption and time limits: SIGTERM or SIGUSR1 make every rank finish its iteration and
# checkpoint it, and the run exits with 75. This script passes on the SIGTERM and SIGUSR1 it
# receives (e.g. from `sbatch --signal=B:USR1@120`, 120 seconds before the time limit) and Ctrl-C
# (as SIGTERM) to srun, which passes them on to the tasks; and, inside a batch job (submitted
# with `sbatch --requeue`), it requeues the job when the run exits with 75. Give it --resume, so
# that the requeued job continues from the checkpoint (and a first run starts from scratch):
#
#   #!/bin/bash
#   #SBATCH --signal=B:USR1@120 --requeue --time=24:00:00 ...
#   exec tools/slurm_train.sh PARTITION dsnet configs/dsnet_small_in1k.py work_dirs/dsnet --resume
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_PYTHON="${MMDSNET_VENV:-$ROOT/.venv}/bin/python"
[ -x "$VENV_PYTHON" ] || VENV_PYTHON=python
PREEMPTED=75  # mmdsnet.engine.PREEMPTED_EXIT_CODE

# srun runs in the background, so that the signals for the job reach it through these traps (a
# foreground srun would get them only once it has ended). srun passes them on to the tasks.
# Ctrl-C becomes a SIGTERM: a background command ignores SIGINT, and it stops the run gracefully.
SRUN_PID=
forwarded=0
forward() {
    forwarded=1
    kill -s "$1" "$SRUN_PID" 2>/dev/null || true
}
trap 'forward TERM' TERM INT
trap 'forward USR1' USR1

# SRUN_ARGS is a list of srun options, split on spaces on purpose.
# shellcheck disable=SC2086
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "${PYTHON:-$VENV_PYTHON}" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "${@:5}" &
SRUN_PID=$!

# A trapped signal ends `wait` early (status > 128): wait again until srun itself has ended.
while :; do
    forwarded=0
    status=0
    wait "$SRUN_PID" || status=$?
    [ "$forwarded" = 1 ] && [ "$status" -gt 128 ] || break
done

# Inside an allocation (sbatch; salloc cannot requeue and says so), start over from the queue.
if [ "$status" -eq "$PREEMPTED" ] && [ -n "${SLURM_JOB_ID:-}" ] \
        && scontrol requeue "$SLURM_JOB_ID"; then
    echo "preempted: the iteration in flight was checkpointed; job $SLURM_JOB_ID requeued" >&2
fi
exit "$status"
