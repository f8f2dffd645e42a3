"""The OpenMMLab stack installs, imports and its compiled ops compute the right numbers, and
installing mmdsnet into it with pip changes nothing else."""
import json
import os
import subprocess
import sys

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stack_imports_together():
    import mmcv.ops
    import mmdet
    import mmengine
    import mmpretrain

    import mmdsnet
    assert mmdsnet.__version__
    assert (mmengine.__version__, mmcv.__version__) == ('0.10.7', '2.1.0')
    assert (mmpretrain.__version__, mmdet.__version__) == ('1.2.0', '3.3.0')
    assert hasattr(mmcv.ops, 'nms') and hasattr(mmcv.ops, 'RoIAlign')


def test_compiled_nms_keeps_the_hand_checked_boxes():
    from mmcv.ops import nms

    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box0, box1) = 81 / 119 = 0.68 > 0.5, so box1 goes; box2 overlaps nothing.
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.equal(dets[:, 4], torch.tensor([0.9, 0.7]))
    _, keep = nms(boxes, scores, iou_threshold=0.7)
    assert keep.tolist() == [0, 1, 2]


def test_compiled_roi_align_matches_hand_computed_bins():
    from mmcv.ops import RoIAlign

    # f(x, y) = x + 4y is linear, so a bin's bilinear samples average to f at the bin centre.
    feature = torch.arange(16.).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    roi_align = RoIAlign(output_size=2, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    out = roi_align(feature, rois)
    # aligned=True shifts the RoI by half a pixel: bins cover [-0.5, 1.5] and [1.5, 3.5],
    # with 2 samples each at 0, 1 and 2, 3 -> centres 0.5 and 2.5.
    expected = torch.tensor([[[[0.5 + 4 * 0.5, 2.5 + 4 * 0.5], [0.5 + 4 * 2.5, 2.5 + 4 * 2.5]]]])
    torch.testing.assert_close(out, expected)


STACK = {'torch', 'torchvision', 'numpy', 'mmcv', 'mmengine', 'mmpretrain', 'mmdet'}


def test_pip_install_into_this_environment_leaves_the_stack_alone(tmp_path):
    """``pip install -e .`` into an environment that runs mmdet 3.3 / mmpretrain 1.2 (either
    tested stack) must not replace torch, torchvision, numpy or any OpenMMLab package: a new torch
    breaks mmcv's compiled ops."""
    report = tmp_path / 'report.json'
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-build-isolation',
         '--disable-pip-version-check', '--quiet', '--report', str(report), '-e', REPO_ROOT],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    installs = {item['metadata']['name'].lower(): item['metadata']['version']
                for item in json.loads(report.read_text())['install']}
    assert 'mmdsnet' in installs
    assert not STACK & set(installs), f'pip would install {installs}'
