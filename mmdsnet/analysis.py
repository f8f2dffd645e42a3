"""FLOPs of fused attention in MMEngine's counter, so that every tool counts DSNet alike.

MMEngine's ``FlopAnalyzer`` (behind ``mmengine.analysis.get_model_complexity_info``, which
MMPretrain's and MMDetection's ``get_flops.py`` call) has no handle for
``aten::scaled_dot_product_attention``: it skips the op with an "Unsupported operator" warning,
and DSNet's default (fused) attention went uncounted (1.751 G instead of 1.84 G for DSNet-T at
224). :func:`register_flop_handles`, called by ``import mmdsnet``, adds one to the counter's
defaults. It counts what the explicit path ``softmax(q k^T * scale) v`` counts with MMEngine's
matmul handle, one multiply-add per FLOP: ``q @ k^T`` and ``weights @ v``; the scale, the softmax
and dropout count nothing there either. The tracer records the public op whichever kernel runs
it (flash, memory-efficient, math; CPU or CUDA), so this one name covers them all.

:class:`OperatorCounter` counts the other cost that decides a GPU step's time, the ATen operators
the host dispatches (``tools/benchmarks/op_count.py``).
"""
import collections
from math import prod
from typing import Any, List

from mmengine.analysis import FlopAnalyzer, complexity_analysis
from mmengine.analysis.jit_handles import generic_activation_jit, get_shape
from torch.utils._python_dispatch import TorchDispatchMode

SDPA_OP = 'aten::scaled_dot_product_attention'


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``scaled_dot_product_attention(q, k, v)``: for every (batch, head) pair,
    ``Nq * Nk * head_dim`` for the logits and ``Nq * Nk * value_dim`` for the weighted values.
    The (batch, head) count is the output's, so that broadcast or grouped key/value heads are
    counted once per query head, as the explicit path's matmuls count them."""
    query, key = get_shape(inputs[0]), get_shape(inputs[1])
    out = get_shape(outputs[0])
    num_keys, head_dims, value_dims = key[-2], query[-1], out[-1]
    return prod(out[:-1]) * num_keys * (head_dims + value_dims)


def register_flop_handles() -> None:
    """Make :func:`sdpa_flop_jit` (and, for activations, the op's output size) a default handle
    of every ``FlopAnalyzer`` (``ActivationAnalyzer``) created from now on, in this process.

    MMEngine builds each analyzer's handles from module-level dicts and offers no public hook
    for them; a handle already there (one a later MMEngine may bring) is kept.
    """
    complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(SDPA_OP, sdpa_flop_jit)
    complexity_analysis._DEFAULT_SUPPORTED_ACT_OPS.setdefault(SDPA_OP, generic_activation_jit())


def quiet_flop_analyzer(model: Any, inputs: tuple) -> FlopAnalyzer:
    """MMEngine's ``FlopAnalyzer`` for ``model(*inputs)`` without its warnings (unsupported
    operators, uncalled modules, tracer), for tools that report uncounted operators themselves
    (``unsupported_ops()``)."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


class OperatorCounter(TorchDispatchMode):
    """Counts every ATen operator dispatched while it is active, by name (``counts``)."""

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))
