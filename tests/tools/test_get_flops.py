"""tools/analysis/get_flops.py: FLOPs of a classification and a detection config, with no data
on disk and no checkpoint."""
import os

import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from tool_scripts import load_tool

from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def get_flops():
    return load_tool('get_flops', 'analysis')


def config(name):
    return os.path.join(REPO_ROOT, 'configs', name)


def test_classifier_at_224_gives_the_readme_figure(get_flops, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ and no checkpoints/ here
    result = get_flops.main([config('dsnet_tiny_in1k.py')])
    out = capsys.readouterr().out
    assert 'Input shape: (1, 3, 224, 224)' in out
    assert 'FLOPs (backbone + neck): 1.84 G' in out
    assert 'Params (whole model): 10.53 M (10,534,312)' in out
    assert result['params'] == 10_534_312
    assert 'aten::scaled_dot_product_attention' not in result['uncounted']


def test_detector_counts_backbone_and_neck_at_a_padded_shape(get_flops, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's COCO and its pretrained checkpoint are absent
    result = get_flops.main([config('mask_rcnn_dsnet_tiny_coco.py'), '--shape', '100', '150'])
    # Padded to the data preprocessor's multiple of 32, as it pads images.
    assert result['input_shape'] == (1, 3, 128, 160)
    assert 'aten::scaled_dot_product_attention' not in result['uncounted']
    backbone = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        backbone_flops = FlopAnalyzer(backbone, (torch.rand(1, 3, 128, 160), )).total()
    assert result['flops'] > backbone_flops  # plus the FPN
    assert result['params'] == 30_190_768  # the whole Mask R-CNN, heads included


def test_shape_takes_one_or_two_sides(get_flops):
    cfg = get_flops.load_config(config('dsnet_tiny_in1k.py'))
    assert get_flops.input_shape(cfg, [96]) == (1, 3, 96, 96)
    assert get_flops.input_shape(cfg, [96, 128]) == (1, 3, 96, 128)
    with pytest.raises(SystemExit):
        get_flops.parse_args([config('dsnet_tiny_in1k.py'), '--shape', '1', '2', '3'])
