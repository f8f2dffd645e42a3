"""mmdsnet.compat.torch_compiler_api: ``torch.compiler.is_compiling`` is missing on old torch
(reproduced where it is), and the shim tells traced code from eager code."""
import pytest
import torch
import torch._dynamo

from mmdsnet.compat.torch_compiler_api import is_compiling
from mmdsnet.compat.versions import TORCH


@pytest.mark.skipif(TORCH >= (2, 3), reason=f'torch {torch.__version__} has the name')
def test_old_torch_lacks_torch_compiler_is_compiling():
    assert not hasattr(torch.compiler, 'is_compiling')


def test_is_compiling_only_while_dynamo_traces():

    def sign(x):
        return x + 1 if is_compiling() else x - 1

    torch._dynamo.reset()
    assert sign(torch.zeros(1)).item() == -1
    assert torch.compile(sign, backend='eager')(torch.zeros(1)).item() == 1
