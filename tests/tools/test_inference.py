"""Inference on a DSNet-tiny digits checkpoint (random weights): MMPretrain's
ImageClassificationInferencer, tools/demo/image_demo.py, and tools/deploy/export_onnx.py with
onnxruntime matching PyTorch at batch sizes and image sizes other than the traced one; and
tools/demo/seg_demo.py on a DSNet-tiny UperNet checkpoint (random weights, ADE20K classes)."""
import os
import re
import subprocess
import sys

# First: its compat fixes must precede the first mmpretrain import.
import mmdsnet  # noqa: F401  isort:skip
import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from mmpretrain.apis import ImageClassificationInferencer, get_model
from mmseg.apis import init_model
from mmseg.datasets import ADE20KDataset
from PIL import Image

from mmdsnet.datasets import DIGITS_CLASSES, write_digits
from mmdsnet.launch import load_config
from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')
SEG_CONFIG = os.path.join(REPO_ROOT, 'configs', 'upernet_dsnet_tiny_ade20k.py')
# The segmentation demo infers at a short side of 64 instead of the config's 512: a second.
SEG_OPTIONS = ('--cfg-options', 'test_pipeline.1.scale=(256,64)')


def run_tool(path, *args, cwd):
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'tools', path),
                             *map(str, args)], cwd=cwd, capture_output=True, text=True,
                            timeout=600, env={**os.environ, 'PYTHONPATH': REPO_ROOT,
                                              'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """data/digits and ``random.pth``, a Runner-style checkpoint with the digit classes."""
    root = tmp_path_factory.mktemp('inference')
    write_digits(str(root / 'data' / 'digits'))
    torch.manual_seed(0)
    model = get_model(CONFIG, pretrained=False)
    for module in model.modules():  # statistics that make folding the norms matter
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=DIGITS_CLASSES))), root / 'random.pth')
    return root


def digit_image(workspace):
    return str(workspace / 'data' / 'digits' / 'val' / '5' / '0005.png')


def test_inferencer_with_config_and_checkpoint(workspace):
    inferencer = ImageClassificationInferencer(CONFIG, pretrained=str(workspace / 'random.pth'),
                                               device='cpu')
    result = inferencer(digit_image(workspace))[0]
    assert result['pred_scores'].shape == (10, )
    assert np.isclose(result['pred_scores'].sum(), 1, atol=1e-5)
    assert result['pred_class'] == DIGITS_CLASSES[result['pred_label']]


def test_image_demo_prints_top5_and_draws(workspace):
    out_file = workspace / 'demo.png'
    output = run_tool('demo/image_demo.py', digit_image(workspace), CONFIG,
                      workspace / 'random.pth', '--out-file', out_file, cwd=workspace)
    ranked = re.findall(r'^(\d)\. (\S+) +([\d.]+)  \(class (\d)\)$', output, re.MULTILINE)
    assert [int(rank) for rank, *_ in ranked] == [1, 2, 3, 4, 5]
    assert all(name == label for _, name, _, label in ranked)
    scores = [float(score) for _, _, score, _ in ranked]
    assert scores == sorted(scores, reverse=True)
    with Image.open(out_file) as drawn, Image.open(digit_image(workspace)) as digit:
        assert min(drawn.size) == 224  # the 32-pixel digit, enlarged to make room for the text
        plain = np.asarray(digit.convert('RGB').resize(drawn.size), dtype=float)
        drawn = np.asarray(drawn.convert('RGB'), dtype=float)
    # the label box in the top left corner; the rest is the digit
    assert np.abs(drawn[:20, :100] - plain[:20, :100]).mean() > 50
    assert np.abs(drawn[40:] - plain[40:]).mean() < 10


def test_export_onnx_matches_pytorch(workspace):
    onnx_file = workspace / 'dsnet_tiny_digits.onnx'
    run_tool('deploy/export_onnx.py', CONFIG, workspace / 'random.pth', onnx_file, '--shape', 64,
             64, cwd=workspace)

    graph = onnx.load(str(onnx_file)).graph
    input_shape = graph.input[0].type.tensor_type.shape
    input_dims = [dim.dim_param or dim.dim_value for dim in input_shape.dim]
    assert (graph.input[0].name, input_dims) == ('input', ['batch', 3, 'height', 'width'])
    assert graph.output[0].name == 'logits'
    # Folded: only the local streams' norms (before a padded conv) and the final norm remain.
    depths = DSNet.arch_zoo['tiny']['depths']
    assert sum(node.op_type == 'BatchNormalization' for node in graph.node) == sum(depths) + 1

    model = get_model(CONFIG, pretrained=str(workspace / 'random.pth'), device='cpu').eval()
    session = onnxruntime.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 64, 64), (1, 3, 96, 128), (3, 3, 100, 76)]:
        inputs = torch.randn(shape, generator=generator)
        with torch.no_grad():
            expected = model(inputs, mode='tensor').numpy()
        logits = session.run(['logits'], {'input': inputs.numpy()})[0]
        assert logits.shape == (shape[0], 10)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4, err_msg=str(shape))


@pytest.fixture(scope='module')
def seg_workspace(tmp_path_factory):
    """``random.pth``, a Runner-style checkpoint of the DSNet-tiny UperNet with the ADE20K classes
    and palette, and ``image.png``, 48 x 64 pixels of colour gradients."""
    root = tmp_path_factory.mktemp('seg_inference')
    torch.manual_seed(0)
    model = init_model(load_config(SEG_CONFIG), device='cpu')  # no weights: random ones
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(ADE20KDataset.METAINFO))), root / 'random.pth')
    rows, columns = np.mgrid[0:48, 0:64]
    image = np.stack([rows * 5, columns * 4, 255 - rows * 2 - columns * 2], axis=-1)
    Image.fromarray(image.astype(np.uint8)).save(root / 'image.png')
    return root


def test_seg_demo_draws_a_coloured_mask_over_the_image(seg_workspace):
    out_file = seg_workspace / 'drawn.png'
    opacity = 0.6
    output = run_tool('demo/seg_demo.py', seg_workspace / 'image.png', SEG_CONFIG,
                      seg_workspace / 'random.pth', '--out', out_file, '--opacity', opacity,
                      *SEG_OPTIONS, cwd=seg_workspace)

    # One line per predicted class, with the share of the image it covers.
    shares = re.findall(r'^ *(.+?) +([\d.]+)%$', output, re.MULTILINE)
    assert shares and all(name in ADE20KDataset.METAINFO['classes'] for name, _ in shares)
    assert sum(float(share) for _, share in shares) == pytest.approx(100, abs=0.1 * len(shares))
    with Image.open(out_file) as drawn, Image.open(seg_workspace / 'image.png') as plain:
        assert drawn.size == plain.size == (64, 48)
        drawn = np.asarray(drawn.convert('RGB'), dtype=float)
        plain = np.asarray(plain.convert('RGB'), dtype=float)
    # Each pixel is the image blended with its class's palette colour (truncated to integers),
    # but where a class name is written.
    mask = (drawn - (1 - opacity) * plain) / opacity
    palette = np.array(ADE20KDataset.METAINFO['palette'], dtype=float)
    distance = np.abs(mask[:, :, None] - palette).max(axis=-1).min(axis=-1)
    assert (distance <= 1 / opacity).mean() > 0.8
    assert (np.abs(drawn - plain).max(axis=-1) > 5).mean() > 0.8


def test_seg_demo_names_a_missing_file(seg_workspace):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, 'tools', 'demo', 'seg_demo.py'), 'missing.png',
         SEG_CONFIG, str(seg_workspace / 'random.pth')], cwd=seg_workspace, capture_output=True,
        text=True, timeout=600, env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    assert result.returncode == 2
    assert "image file 'missing.png' not found" in result.stderr
