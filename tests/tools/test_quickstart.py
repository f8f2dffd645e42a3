"""The README's first command, tools/quickstart.py: DSNet-tiny learns the embedded digits; and the
segmentation quickstart on the generated shapes set."""
import os
import re
import subprocess
import sys

import pytest
from tool_scripts import run, tool

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_quickstart_reaches_90_percent_held_out_top1(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'quickstart.py')],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1800,
                            env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    top1 = float(re.search(r'^held-out top-1: ([\d.]+)% \(360 images', output, re.M).group(1))
    assert top1 >= 90, output[-3000:]
    checkpoint = re.search(r'^checkpoint: (.+)$', output, re.M).group(1)
    assert os.path.isfile(checkpoint) and (tmp_path / 'data' / 'digits' / 'meta').is_dir()


def test_segmentation_quickstart_trains_and_prints_the_miou(tmp_path):
    """The semantic shapes quickstart as documented (make_shapes_dataset.py --semantic, then
    tools/train.py), shortened to 2 iterations on 16 images of 64x64."""
    config = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'fpn_dsnet_tiny_shapes_ade.py')
    output = run([*tool('make_shapes_dataset.py'), '--semantic', '--num-train', '16',
                  '--num-val', '4', '--image-size', '64'], cwd=tmp_path)
    assert 'wrote 16 train and 4 val images under data/shapes_ade' in output
    options = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2',
               'model.data_preprocessor.size=(64,64)', 'train_dataloader.batch_size=4',
               'val_dataloader.batch_size=4']
    for loader in ('train_dataloader', 'val_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    output = run([*tool('train.py'), config, '--work-dir', 'work', '--cfg-options', *options],
                 cwd=tmp_path)
    metrics = re.search(r'Iter\(val\) \[1/1\]\s+aAcc: ([\d.]+)\s+mIoU: ([\d.]+)\s+mAcc: ([\d.]+)',
                        output)
    assert metrics, output[-3000:]
    assert all(0 <= float(value) <= 100 for value in metrics.groups())
    for name in ('background', 'circle', 'triangle', 'rectangle'):
        assert re.search(rf'^\|\s+{name}\s+\|', output, re.M)
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
