"""ONNX export of DSNet through the TorchScript exporter, on torch 2.1 to today's.

Failures (``tests/compat/test_torch_onnx_export.py`` reproduces the first where it exists):

- torch 2.1's ONNX symbolic of ``scaled_dot_product_attention`` fails on a float ``scale``,
  which DSNet passes; torch >= 2.2 exports it. Needed on: torch < 2.2, where the modules with a
  ``fused_attention`` switch export their explicit form, the same function.
- torch >= 2.9 exports through dynamo by default, which needs onnxscript, which the stack does
  not install; torch < 2.5 has no such switch. Needed on: torch >= 2.5, where ``dynamo=False``
  is passed.

Used by ``tools/deploy/export_onnx.py``.
"""
import inspect

import torch
import torch.nn as nn

from .versions import TORCH

#: torch's ONNX exporter takes ``scaled_dot_product_attention(..., scale=...)``.
ONNX_EXPORTS_SCALED_ATTENTION = TORCH >= (2, 2)


def export_onnx(model: nn.Module, args: tuple, filename, **kwargs) -> None:
    """``torch.onnx.export(model, args, filename, **kwargs)`` with the TorchScript exporter."""
    if not ONNX_EXPORTS_SCALED_ATTENTION:
        for module in model.modules():
            if hasattr(module, 'fused_attention'):
                module.fused_attention = False
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    torch.onnx.export(model, args, filename, **kwargs)
