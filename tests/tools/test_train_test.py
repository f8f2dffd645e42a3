"""tools/train.py (with --resume, also after a SIGTERM, and --tensorboard), tools/test.py (with
--out), tools/dist_train.sh and tools/dist_test.sh on two CPU processes, on a few images of the
embedded digits set with the quickstart config.

The tools run from a scratch folder holding ``data/digits``, so the config's relative
``data_root`` finds it; ``indices`` keeps the first images of each split."""
import os
import re
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tool_scripts import load_tool, run, small_run, tool

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.datasets import write_digits
from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')
DET_CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'mask_rcnn_dsnet_tiny_shapes.py')


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('cls_tools')
    write_digits(str(root / 'data' / 'digits'))
    return root


def test_train_resume_and_test(workspace):
    work_dir = workspace / 'single'
    output = run([*tool('train.py'), CONFIG, '--work-dir', work_dir, *small_run(8, 4, 4)],
                 cwd=workspace)
    assert 'Epoch(train) [2][2/2]' in output
    assert (work_dir / 'epoch_2.pth').is_file()

    output = run([*tool('train.py'), CONFIG, '--work-dir', work_dir, '--resume',
                  *small_run(8, 4, 4, max_epochs=3)], cwd=workspace)
    assert 'resumed epoch: 2, iter: 4' in output
    assert 'Epoch(train) [1]' not in output and 'Epoch(train) [3][2/2]' in output
    checkpoint = work_dir / 'epoch_3.pth'
    assert checkpoint.is_file()

    predictions = workspace / 'predictions.pkl'
    output = run([*tool('test.py'), CONFIG, checkpoint, '--work-dir', workspace / 'test', '--out',
                  predictions, '--cfg-options', 'test_dataloader.dataset.indices=6',
                  'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'],
                 cwd=workspace)
    top1 = float(re.search(r'Epoch\(test\).*accuracy/top1: ([\d.]+)', output).group(1))
    assert 0 <= top1 <= 100
    results = load(predictions)
    assert len(results) == 6
    assert {'pred_score', 'pred_label', 'gt_label'} <= set(results[0])


def test_dist_train_and_test_on_two_cpu_processes(workspace, free_port):
    work_dir = workspace / 'dist'
    output = run(['bash', os.path.join(REPO_ROOT, 'tools', 'dist_train.sh'), CONFIG, 2,
                  '--work-dir', work_dir, '--auto-scale-lr', *small_run(8, 4, 2)],
                 cwd=workspace, PORT=str(free_port()))
    assert 'Distributed training: True' in output and 'GPU number: 2' in output
    # channels-last weights get channels-last gradients, which DDP's buckets take as they are
    assert 'Grad strides do not match bucket view strides' not in output
    # the lr is set for a total batch of 1024; here it is 2 processes x 2 images
    assert 'the current batch size is 4. Scaling the original LR by 0.00390625' in output
    # 8 images in batches of 2 on one process would be 4 iterations; 2 ranks share them.
    assert 'Epoch(train) [2][2/2]' in output and '[2][3/' not in output
    assert sorted(name for name in os.listdir(work_dir) if name.endswith('.pth')) == [
        'epoch_2.pth']

    output = run(['bash', os.path.join(REPO_ROOT, 'tools', 'dist_test.sh'), CONFIG,
                  work_dir / 'epoch_2.pth', 2, '--work-dir', workspace / 'dist_test',
                  '--cfg-options', 'test_dataloader.dataset.indices=6',
                  'test_dataloader.batch_size=1', 'test_dataloader.num_workers=0',
                  'test_dataloader.persistent_workers=False'],
                 cwd=workspace, PORT=str(free_port()))
    # 6 images, one a batch, shared by 2 ranks
    assert re.search(r'Epoch\(test\) \[3/3\].*accuracy/top1: [\d.]+', output), output[-2000:]


def test_sigterm_mid_epoch_then_resume_ends_with_the_uninterrupted_weights(workspace):
    """The scheduler's SIGTERM comes from outside, at whatever point of an iteration; the run
    checkpoints the iteration in flight, exits with 75, and --resume finishes it."""
    uninterrupted = workspace / 'uninterrupted'
    run([*tool('train.py'), CONFIG, '--work-dir', uninterrupted, *small_run(8, 4, 4, 3)],
        cwd=workspace)

    preempted = workspace / 'preempted'
    process = subprocess.Popen(
        [*tool('train.py'), CONFIG, '--work-dir', str(preempted), *small_run(8, 4, 4, 3)],
        cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1'})
    output = []
    for line in process.stdout:  # two iterations an epoch; signal in the first of epoch 2
        output.append(line)
        if 'Epoch(train) [2][1/2]' in line:
            process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=600) == 75, ''.join(output)[-3000:]
    stopped_after = re.fullmatch(rf'{preempted}/iter_([345])\.pth',
                                 (preempted / 'last_checkpoint').read_text()).group(1)
    assert f'SIGTERM received: stopped after iteration {stopped_after}' in ''.join(output)

    run([*tool('train.py'), CONFIG, '--work-dir', preempted, '--resume',
         *small_run(8, 4, 4, 3)], cwd=workspace)
    expected = load_torch_file(str(uninterrupted / 'epoch_3.pth'))['state_dict']
    resumed = load_torch_file(str(preempted / 'epoch_3.pth'))['state_dict']
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train')


@pytest.mark.parametrize('config, visualizer', [(CONFIG, 'UniversalVisualizer'),
                                                (DET_CONFIG, 'DetLocalVisualizer')],
                         ids=['classification', 'detection'])
def test_tensorboard_switch_adds_the_backend_next_to_the_local_one(train_tool, config,
                                                                   visualizer):
    cfg = load_config(config)
    train_tool.add_tensorboard(cfg)
    train_tool.add_tensorboard(cfg)  # a config that has the backend keeps one
    assert cfg.visualizer.type == visualizer
    assert [backend.type for backend in cfg.visualizer.vis_backends] == [
        'LocalVisBackend', 'TensorboardVisBackend']


def test_tensorboard_switch_on_a_config_without_a_visualizer(train_tool):
    """MMEngine's Runner builds a Visualizer with LocalVisBackend for such a config."""
    cfg = Config(dict(model=dict(type='ImageClassifier')))
    train_tool.add_tensorboard(cfg)
    assert cfg.visualizer.to_dict() == dict(type='Visualizer', vis_backends=[
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])


def test_tensorboard_switch_without_tensorboard_names_the_fix(train_tool, monkeypatch):
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', None)  # as if not installed
    with pytest.raises(ImportError, match=r'--tensorboard needs the tensorboard package .*'
                       r'pip install tensorboard'):
        train_tool.add_tensorboard(load_config(CONFIG))


def test_train_with_tensorboard_writes_events_that_plot_curves_also_draws(workspace):
    work_dir = workspace / 'tensorboard'
    run([*tool('train.py'), CONFIG, '--work-dir', work_dir, '--tensorboard',
         *small_run(8, 4, 4)], cwd=workspace)
    events, = work_dir.glob('*/vis_data/events.out.tfevents.*')
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    # 2 epochs of 2 iterations, logged every iteration; validation after epoch 2
    assert [event.step for event in accumulator.Scalars('loss')] == [1, 2, 3, 4]
    assert [event.step for event in accumulator.Scalars('lr')] == [1, 2, 3, 4]
    assert [event.step for event in accumulator.Scalars('accuracy/top1')] == [2]

    output = run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'analysis', 'plot_curves.py'),
                  work_dir, '--out', workspace / 'curves.png'], cwd=workspace)
    assert '  loss: 4 points, iteration 1 to 4' in output
    assert '  accuracy/top1: 1 point, epoch 2 to 2' in output
    assert (workspace / 'curves.png').stat().st_size > 0
