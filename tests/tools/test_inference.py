"""Inference on a DSNet-tiny digits checkpoint (random weights): MMPretrain's
ImageClassificationInferencer, tools/demo/image_demo.py, and tools/deploy/export_onnx.py with
onnxruntime matching PyTorch at batch sizes and image sizes other than the traced one."""
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
from PIL import Image

from mmdsnet.datasets import DIGITS_CLASSES, write_digits
from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


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
