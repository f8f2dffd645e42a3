"""tools/slurm_train.sh passes the job's signals on to srun and requeues a preempted batch job,
with stand-ins for srun (a run that checkpoints and exits with 75 on SIGTERM/SIGUSR1) and
scontrol."""
import os
import signal
import subprocess
import sys
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_SRUN = f'''#!{sys.executable}
"""Stands in for srun and the training it starts: exit 75 on SIGTERM/SIGUSR1, as a preempted
run does, or with $FAKE_SRUN_EXIT when it appears."""
import os, signal, sys, time

def preempted(signum, frame):
    open(os.environ['FAKE_DIR'] + '/srun_got', 'w').write(signal.Signals(signum).name)
    sys.exit(75)

signal.signal(signal.SIGTERM, preempted)
signal.signal(signal.SIGUSR1, preempted)
open(os.environ['FAKE_DIR'] + '/srun_started', 'w').write(' '.join(sys.argv[1:]))
for _ in range(600):
    if 'FAKE_SRUN_EXIT' in os.environ:
        sys.exit(int(os.environ['FAKE_SRUN_EXIT']))
    time.sleep(0.05)
'''

FAKE_SCONTROL = '''#!/usr/bin/env bash
echo "$@" >> "$FAKE_DIR/scontrol_calls"
'''


@pytest.fixture
def slurm(tmp_path):
    """Start tools/slurm_train.sh with the stand-ins; returns (process, folder of their
    traces) once srun has started."""
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    started = []

    def start(**env):
        process = subprocess.Popen(
            ['bash', os.path.join(REPO_ROOT, 'tools', 'slurm_train.sh'), 'gpu', 'dsnet',
             'configs/dsnet_small_in1k.py', 'work_dirs/dsnet', '--resume'],
            env={**os.environ, 'PATH': f'{tmp_path}:{os.environ["PATH"]}',
                 'FAKE_DIR': str(tmp_path), **env},
            stderr=subprocess.PIPE, text=True)
        started.append(process)
        for _ in range(200):
            if (tmp_path / 'srun_started').exists():
                return process
            time.sleep(0.05)
        raise AssertionError('the stand-in srun did not start')

    yield start, tmp_path
    for process in started:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize('sent,forwarded', [('SIGUSR1', 'SIGUSR1'), ('SIGTERM', 'SIGTERM'),
                                            ('SIGINT', 'SIGTERM')])
def test_a_signal_to_the_batch_shell_reaches_the_run_and_a_preempted_job_is_requeued(
        slurm, sent, forwarded):
    start, traces = slurm
    process = start(SLURM_JOB_ID='4242')
    assert '--launcher=slurm --resume' in (traces / 'srun_started').read_text()
    process.send_signal(signal.Signals[sent])
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 75
    assert (traces / 'srun_got').read_text() == forwarded
    assert (traces / 'scontrol_calls').read_text() == 'requeue 4242\n'
    assert 'job 4242 requeued' in stderr


def test_a_run_that_ends_otherwise_is_not_requeued(slurm):
    start, traces = slurm
    process = start(SLURM_JOB_ID='4242', FAKE_SRUN_EXIT='0')
    assert process.wait(timeout=30) == 0
    assert not (traces / 'scontrol_calls').exists()


def test_outside_an_allocation_a_preempted_run_is_not_requeued(slurm):
    start, traces = slurm
    process = start(SLURM_JOB_ID='')
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 75
    assert not (traces / 'scontrol_calls').exists()
