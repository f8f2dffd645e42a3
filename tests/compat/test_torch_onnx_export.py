"""mmdsnet.compat.torch_onnx_export: torch 2.1 cannot export ``scaled_dot_product_attention``
with a ``scale`` to ONNX (reproduced there), and a DSNet block exports through the shim on every
torch, with the same outputs in ONNX Runtime."""
import inspect
import io

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdsnet.compat.torch_onnx_export import ONNX_EXPORTS_SCALED_ATTENTION, export_onnx
from mmdsnet.models.backbones.dsnet import DSBlock

pytest.importorskip('onnx')


class ScaledAttention(nn.Module):

    def forward(self, query):
        return F.scaled_dot_product_attention(query, query, query, scale=0.5)


@pytest.mark.skipif(ONNX_EXPORTS_SCALED_ATTENTION,
                    reason=f'torch {torch.__version__} exports the fused attention')
def test_scaled_attention_does_not_export_on_old_torch():
    assert 'dynamo' not in inspect.signature(torch.onnx.export).parameters
    with pytest.raises(Exception, match='scale|unsupported|symbolic'):
        torch.onnx.export(ScaledAttention(), (torch.rand(1, 1, 4, 8), ), io.BytesIO(),
                          opset_version=17)


def test_a_block_exports_and_runs_in_onnxruntime():
    onnxruntime = pytest.importorskip('onnxruntime')
    block = DSBlock(16, 2, global_downsample_ratio=2).eval()
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        expected = block(x).numpy()
    onnx_file = io.BytesIO()
    export_onnx(block, (x, ), onnx_file, input_names=['x'], opset_version=17)
    session = onnxruntime.InferenceSession(onnx_file.getvalue())
    np.testing.assert_allclose(session.run(None, {'x': x.numpy()})[0], expected, atol=1e-5)
