"""tools/train.py, dist_train.sh and test.py with the configs' compile switch
(``--cfg-options compile=True``), on the embedded sets, as a user runs them.

The configs are the quickstarts with a DSNet of two stages of one block, so that inductor
compiles within CI's time; the runs share one inductor cache, as the runs of one machine do.
The two-process and Mask R-CNN runs compile with ``aot_eager`` (the graphs inductor would get,
run by eager kernels), since inductor's C++ build is what takes CI's time and the classifier's
runs already cover it."""
import os
import re
import sys

import pytest
from tool_scripts import eager_keys, run, small_run, tool

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.datasets import write_digits, write_shapes_dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICKSTART = os.path.join(REPO_ROOT, 'configs', 'quickstart')
TINY_ARCH = dict(embed_dims=[16, 32], depths=[1, 1], num_heads=[1, 2])
# In a config: replaces the base config's arch name
TINY_ARCH_CFG = dict(_delete_=True, **TINY_ARCH)
MMENGINE_COMPILED_TRAIN_STEP = 'Model has been "compiled"'


def losses(output):
    return [float(loss) for loss in re.findall(r'Epoch\(train\).* loss: ([\d.]+)', output)]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('compiled_training')
    write_digits(str(root / 'data' / 'digits'))
    write_shapes_dataset(str(root / 'data' / 'shapes'), num_train=4, num_val=2)
    (root / 'digits_tiny.py').write_text(
        f"_base_ = [{os.path.join(QUICKSTART, 'dsnet_tiny_digits.py')!r}]\n"
        f"model = dict(backbone=dict(arch={TINY_ARCH_CFG!r}, out_indices=(1, ),\n"
        f"                           attn_drop_rate=0.),\n"
        f"             head=dict(in_channels={TINY_ARCH['embed_dims'][-1]}))\n")
    (root / 'shapes_tiny.py').write_text(
        f"_base_ = [{os.path.join(QUICKSTART, 'mask_rcnn_dsnet_tiny_shapes.py')!r}]\n"
        f"model = dict(backbone=dict(arch={TINY_ARCH_CFG!r}, out_indices=(0, 1)),\n"
        f"             neck=dict(in_channels={TINY_ARCH['embed_dims']!r}))\n")
    return root


@pytest.fixture(scope='module')
def cache_env(workspace):
    """One inductor cache for every run here, as on one machine."""
    return dict(TORCHINDUCTOR_CACHE_DIR=str(workspace / 'inductor_cache'))


def test_compiled_classifier_trains_like_eager_resumes_and_tests(workspace, cache_env):
    config = workspace / 'digits_tiny.py'
    eager = run([*tool('train.py'), config, '--work-dir', workspace / 'eager',
                 *small_run(8, 4, 4, 2)], cwd=workspace)
    compiled = run([*tool('train.py'), config, '--work-dir', workspace / 'compiled',
                    *small_run(8, 4, 4, 2, 'compile=True')], cwd=workspace, timeout=900,
                   **cache_env)

    assert 'Compiled the backbone (DSNet) of ImageClassifier with torch.compile()' in compiled
    assert MMENGINE_COMPILED_TRAIN_STEP not in compiled
    # Same seed, no random draws in the model: the same losses up to float rounding.
    assert len(losses(compiled)) == len(losses(eager)) == 4
    for compiled_loss, eager_loss in zip(losses(compiled), losses(eager)):
        assert compiled_loss == pytest.approx(eager_loss, rel=0.01)
    assert 'accuracy/top1' in compiled.split('Epoch(val)')[-1]

    # The checkpoint is an eager one: its keys, strictly loadable into an uncompiled model.
    checkpoint = workspace / 'compiled' / 'epoch_2.pth'
    state_dict = load_torch_file(str(checkpoint))['state_dict']
    assert set(state_dict) == eager_keys(config, 'mmpretrain')
    assert not any('_orig_mod' in key for key in state_dict)

    resumed = run([*tool('train.py'), config, '--work-dir', workspace / 'compiled', '--resume',
                   *small_run(8, 4, 4, 3)], cwd=workspace)
    assert 'resumed epoch: 2, iter: 4' in resumed and 'Epoch(train) [3][2/2]' in resumed
    resumed = run([*tool('train.py'), config, '--work-dir', workspace / 'compiled', '--resume',
                   *small_run(8, 4, 4, 4, 'compile=True')], cwd=workspace, **cache_env)
    assert 'resumed epoch: 3, iter: 6' in resumed and 'Epoch(train) [4][2/2]' in resumed

    # The quickstart keeps the last checkpoint only: the compiled resumed run's.
    tested = run([*tool('test.py'), config, workspace / 'compiled' / 'epoch_4.pth',
                  '--work-dir', workspace / 'test',
                  '--cfg-options', 'test_dataloader.dataset.indices=4',
                  'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'],
                 cwd=workspace)
    assert re.search(r'Epoch\(test\).*accuracy/top1: [\d.]+', tested)
    onnx_file = workspace / 'compiled.onnx'
    run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'deploy', 'export_onnx.py'), config,
         workspace / 'compiled' / 'epoch_4.pth', onnx_file, '--shape', 64, 64], cwd=workspace)
    assert onnx_file.stat().st_size > 0


def test_compiled_classifier_trains_on_two_processes(workspace, cache_env, free_port):
    work_dir = workspace / 'dist'
    output = run(['bash', os.path.join(REPO_ROOT, 'tools', 'dist_train.sh'),
                  workspace / 'digits_tiny.py', 2, '--work-dir', work_dir,
                  *small_run(8, 4, 2, 2, 'compile.backend=aot_eager')],
                 cwd=workspace, PORT=str(free_port()), **cache_env)
    assert 'Distributed training: True' in output
    assert 'Compiled the backbone (DSNet) of ImageClassifier' in output
    assert 'Epoch(train) [2][2/2]' in output and (work_dir / 'epoch_2.pth').is_file()


def test_compiled_mask_rcnn_trains_on_shapes(workspace, cache_env):
    config = workspace / 'shapes_tiny.py'
    output = run([*tool('train.py'), config, '--work-dir', workspace / 'det',
                  '--cfg-options', 'compile.backend=aot_eager', 'train_cfg.max_epochs=1',
                  'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
                  'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=2',
                  'val_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                  'val_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                  'val_dataloader.persistent_workers=False'],
                 cwd=workspace, **cache_env)
    assert 'Compiled the backbone (DSNet) of MaskRCNN' in output
    assert MMENGINE_COMPILED_TRAIN_STEP not in output
    assert 'Epoch(train) [1][2/2]' in output
    assert re.search(r'coco/segm_mAP: [\d.-]+', output)
    state_dict = load_torch_file(str(workspace / 'det' / 'epoch_1.pth'))['state_dict']
    assert set(state_dict) == eager_keys(config, 'mmdet')


def test_compile_without_a_cxx_compiler_warns_once_and_trains_eagerly(workspace):
    output = run([*tool('train.py'), workspace / 'digits_tiny.py', '--work-dir',
                  workspace / 'no_cxx', *small_run(4, 2, 2, 2, 'compile=True')], cwd=workspace,
                 CXX='no-such-cxx-compiler')
    warning = ("compile=True is ignored and the model trains eagerly: inductor needs a C++ "
               "compiler for the CPU and none of ['no-such-cxx-compiler'] is on PATH")
    assert output.count(warning) == 1
    assert 'Compiled ' not in output and MMENGINE_COMPILED_TRAIN_STEP not in output
    assert 'Epoch(train) [2][2/2]' in output
