"""``torch.compiler.is_compiling`` on torch 2.1 and 2.2.

Failure: ``torch.compiler.is_compiling`` came in torch 2.3; code that calls it fails with
``AttributeError`` on torch 2.1, one of the tested stacks, whose ``torch._dynamo`` has the same
function. Needed on: torch < 2.3. Reproduced by ``tests/compat/test_torch_compiler_api.py``.
"""
import torch
import torch._dynamo


def is_compiling() -> bool:
    """True while dynamo traces the caller (``torch.compile``, ``torch.export``)."""
    if hasattr(torch.compiler, 'is_compiling'):
        return torch.compiler.is_compiling()
    return torch._dynamo.is_compiling()
