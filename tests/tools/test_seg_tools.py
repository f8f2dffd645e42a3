"""The segmentation command lines on an ADE20K-layout set the test writes (8 training and 3
validation images of random pixels and labels): tools/train.py (with --resume, also after a
SIGTERM, and with the compile switch), tools/test.py (aAcc, mIoU, mAcc) and tools/dist_train.sh
on two CPU processes, with configs/upernet_dsnet_tiny_ade20k.py at 64x64 crops.

The tools run from a scratch folder holding ``data/ade/ADEChallengeData2016``, the config's
relative ``data_root``."""
import os
import re
import signal
import subprocess

import cv2
import numpy as np
import pytest
import torch
from tool_scripts import REPO_ROOT, eager_keys, run, tool

from mmdsnet.checkpoint import load_torch_file

CONFIG = os.path.join(REPO_ROOT, 'configs', 'upernet_dsnet_tiny_ade20k.py')
ADE_ROOT = os.path.join('data', 'ade', 'ADEChallengeData2016')


def small_run(max_iters, batch_size=2):
    """``--cfg-options`` for a short run from random weights at 64x64 crops (the config's 512x512
    crops of images resized to a 512 short side take seconds an iteration on 2 cores)."""
    options = ['model.backbone.init_cfg=None', 'model.data_preprocessor.size=(64,64)',
               'train_dataloader.dataset.pipeline.2.scale=(128,64)',
               'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
               'val_dataloader.dataset.pipeline.1.scale=(128,64)',
               'test_dataloader.dataset.pipeline.1.scale=(128,64)',
               f'train_dataloader.batch_size={batch_size}', f'train_cfg.max_iters={max_iters}',
               f'train_cfg.val_interval={max_iters}', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint.interval=2', 'randomness.seed=0']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return ['--cfg-options', *options]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg_tools')
    rng = np.random.default_rng(0)
    for split, num_images in (('training', 8), ('validation', 3)):
        os.makedirs(root / ADE_ROOT / 'images' / split)
        os.makedirs(root / ADE_ROOT / 'annotations' / split)
        for index in range(num_images):
            name = f'ADE_{split}_{index:08d}'
            cv2.imwrite(str(root / ADE_ROOT / 'images' / split / f'{name}.jpg'),
                        rng.integers(0, 256, (72, 96, 3), dtype=np.uint8))
            cv2.imwrite(str(root / ADE_ROOT / 'annotations' / split / f'{name}.png'),
                        rng.integers(0, 151, (72, 96), dtype=np.uint8))
    return root


def test_train_resume_and_test_print_the_segmentation_metrics(workspace):
    work_dir = workspace / 'single'
    output = run([*tool('train.py'), CONFIG, '--work-dir', work_dir, *small_run(2)],
                 cwd=workspace)
    assert 'Iter(train) [2/2]' in output
    assert (work_dir / 'iter_2.pth').is_file()

    output = run([*tool('train.py'), CONFIG, '--work-dir', work_dir, '--resume',
                  *small_run(4)], cwd=workspace)
    assert 'resumed epoch: 0, iter: 2' in output
    assert 'Iter(train) [1/4]' not in output and 'Iter(train) [4/4]' in output

    output = run([*tool('test.py'), CONFIG, work_dir / 'iter_4.pth', '--work-dir',
                  workspace / 'test', *small_run(4)], cwd=workspace)
    metrics = re.search(r'Iter\(test\) \[3/3\]\s+aAcc: ([\d.]+)\s+mIoU: ([\d.]+)\s+'
                        r'mAcc: ([\d.]+)', output)
    assert metrics, output[-3000:]
    assert all(0 <= float(value) <= 100 for value in metrics.groups())
    assert re.search(r'\|\s+Class\s+\|\s+IoU\s+\|\s+Acc\s+\|', output)  # the per-class table


def test_sigterm_then_resume_ends_with_the_uninterrupted_weights(workspace):
    """Iteration-based training: the resumed run skips the batches already trained on and
    restores the random streams, so it ends where the uninterrupted run does."""
    uninterrupted = workspace / 'uninterrupted'
    run([*tool('train.py'), CONFIG, '--work-dir', uninterrupted, *small_run(5)], cwd=workspace)

    preempted = workspace / 'preempted'
    process = subprocess.Popen(
        [*tool('train.py'), CONFIG, '--work-dir', str(preempted), *small_run(5)],
        cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, 'PYTHONPATH': str(REPO_ROOT), 'OMP_NUM_THREADS': '1'})
    output = []
    for line in process.stdout:
        output.append(line)
        if 'Iter(train) [1/5]' in line:
            process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=600) == 75, ''.join(output)[-3000:]
    stopped_after = re.fullmatch(rf'{preempted}/iter_([1-4])\.pth',
                                 (preempted / 'last_checkpoint').read_text()).group(1)
    assert f'SIGTERM received: stopped after iteration {stopped_after}' in ''.join(output)

    run([*tool('train.py'), CONFIG, '--work-dir', preempted, '--resume', *small_run(5)],
        cwd=workspace)
    expected = load_torch_file(str(uninterrupted / 'iter_5.pth'))['state_dict']
    resumed = load_torch_file(str(preempted / 'iter_5.pth'))['state_dict']
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)


def test_dist_train_runs_two_cpu_processes(workspace, free_port):
    # The heads' SyncBN needs CUDA tensors: on CPU processes they normalise per process.
    output = run(['bash', os.path.join(REPO_ROOT, 'tools', 'dist_train.sh'), CONFIG, 2,
                  '--work-dir', workspace / 'dist', *small_run(2),
                  'model.decode_head.norm_cfg.type=BN', 'model.auxiliary_head.norm_cfg.type=BN'],
                 cwd=workspace, PORT=str(free_port()))
    assert 'Distributed training: True' in output
    assert 'Iter(train) [2/2]' in output and 'mIoU' in output
    assert (workspace / 'dist' / 'iter_2.pth').is_file()


def test_compiled_upernet_trains_validates_and_saves_the_eager_keys(workspace):
    """``compile`` on a segmentor compiles its DSNet (a DSNet of one block per stage, traced
    with ``aot_eager``: inductor's C++ takes minutes on CI's cores) for training and for the
    validation during training; the checkpoint has the eager model's keys."""
    embed_dims = [16, 32, 32, 64]
    config = workspace / 'upernet_tiny_arch.py'
    config.write_text(
        f"_base_ = [{CONFIG!r}]\n"
        f"model = dict(\n"
        f"    backbone=dict(arch=dict(_delete_=True, embed_dims={embed_dims!r},\n"
        f"                            depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2])),\n"
        f"    decode_head=dict(in_channels={embed_dims!r}, channels=16),\n"
        f"    auxiliary_head=dict(in_channels={embed_dims[2]}, channels=16))\n")
    options = small_run(2)
    output = run([*tool('train.py'), config, '--work-dir', workspace / 'compiled', *options,
                  'compile.backend=aot_eager'],
                 cwd=workspace, TORCHINDUCTOR_CACHE_DIR=str(workspace / 'inductor_cache'))
    assert 'Compiled the backbone (DSNet) of EncoderDecoder' in output
    assert 'Iter(train) [2/2]' in output and re.search(r'mIoU: [\d.]+', output)
    state_dict = load_torch_file(str(workspace / 'compiled' / 'iter_2.pth'))['state_dict']
    assert set(state_dict) == eager_keys(config, 'mmseg')
