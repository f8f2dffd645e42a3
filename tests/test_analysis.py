"""MMEngine's FLOP counter counts fused attention as the explicit path's two matrix products,
after ``import mmdsnet``, in our code and in MMPretrain's own ``get_flops.py``."""
import os
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import mmdsnet  # noqa: F401  registers the handle
from mmdsnet.analysis import quiet_flop_analyzer
from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Attention(nn.Module):

    def __init__(self, fused):
        super().__init__()
        self.fused = fused

    def forward(self, query, key, value):
        if self.fused:
            return F.scaled_dot_product_attention(query, key, value, scale=0.5)
        return (query @ key.transpose(-2, -1) * 0.5).softmax(dim=-1) @ value


def test_fused_attention_counts_as_its_two_matmuls():
    # Queries, keys and value channels of different sizes, so that a swapped axis shows.
    inputs = (torch.rand(2, 3, 5, 4), torch.rand(2, 3, 7, 4), torch.rand(2, 3, 7, 6))
    fused = quiet_flop_analyzer(Attention(True), inputs)
    explicit = quiet_flop_analyzer(Attention(False), inputs)
    assert fused.total() == explicit.total() == 2 * 3 * 5 * 7 * (4 + 6)
    assert fused.unsupported_ops() == {}


def test_fused_dsnet_counts_as_explicit_dsnet():
    images = (torch.rand(1, 3, 64, 96), )
    fused = quiet_flop_analyzer(DSNet('tiny', out_indices=(0, 1, 2, 3)).eval(), images)
    explicit = quiet_flop_analyzer(
        DSNet('tiny', out_indices=(0, 1, 2, 3), fused_attention=False).eval(), images)
    assert fused.total() == explicit.total()
    assert fused.by_operator()['scaled_dot_product_attention'] > 0
    assert 'aten::scaled_dot_product_attention' not in fused.unsupported_ops()


def test_mmpretrain_get_flops_tool_counts_the_fused_attention(tmp_path):
    # MMPretrain's own tool, as shipped in its wheel; the config's custom_imports import mmdsnet.
    import mmpretrain
    tool = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'tools', 'analysis_tools',
                        'get_flops.py')
    result = subprocess.run(
        [sys.executable, tool, os.path.join(REPO_ROOT, 'configs', 'dsnet_tiny_in1k.py')],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Flops: 1.84G' in result.stdout
    assert 'scaled_dot_product_attention' not in result.stdout + result.stderr
