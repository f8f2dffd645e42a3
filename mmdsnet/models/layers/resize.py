"""Bilinear resizing of DSNet's global stream, faster than ``F.interpolate`` where it can be."""
from typing import Tuple

import torch
import torch.nn.functional as F

from mmdsnet.compat.torch_compiler_api import is_compiling


def resize_bilinear(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a (B, C, H, W) map, ``align_corners=False``, no antialiasing: the
    releases' ``F.interpolate(x, size, mode='bilinear')``.

    A downsampling by even integer factors is computed as the mean of the two middle taps of
    each cell on both axes, which is where the bilinear kernel samples, because that is much
    faster than the kernel (docs/benchmarks.md); it equals the kernel's result up to the order
    of a four-term sum. Everything else goes to ``F.interpolate``.

    Under ``torch.compile`` everything goes to ``F.interpolate``, which inductor fuses, except
    sides resized to 1: torch 2.1's compiled kernel samples their first entry instead of their
    middle (``test_compiled_resize_to_a_side_of_one_samples_the_middle``).
    """
    if is_compiling():
        return _compiled_resize_bilinear(x, size)
    height, width = x.shape[-2:]
    out_height, out_width = size
    row_factor, col_factor = height // out_height, width // out_width
    # A trace would freeze this size-dependent choice into the graph (ONNX with dynamic shapes).
    if (not torch.jit.is_tracing() and row_factor * out_height == height
            and col_factor * out_width == width and row_factor % 2 == 0 and col_factor % 2 == 0):
        top, bottom = _middle_taps(x, -2, row_factor)
        top_left, top_right = _middle_taps(top, -1, col_factor)
        bottom_left, bottom_right = _middle_taps(bottom, -1, col_factor)
        return (top_left + top_right + bottom_left + bottom_right) * 0.25
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def _compiled_resize_bilinear(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """:func:`resize_bilinear` in a compiled graph. The eager shortcut's choice would guard on
    the divisibility of the sizes, recompiling for every padded detection batch that changes
    it; a side of 1 is the middle of the input side (one entry, or the mean of two)."""
    for dim, out_side in ((-2, size[0]), (-1, size[1])):
        if out_side == 1:
            side = x.shape[dim]
            middle = x.narrow(dim, (side - 1) // 2, 1)
            # A sum, not a mean: torch 2.1's inductor fails on the mean of a narrowed view.
            x = middle if side % 2 else (middle + x.narrow(dim, side // 2, 1)) * 0.5
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def _middle_taps(x: torch.Tensor, dim: int,
                 factor: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The two middle entries of each run of ``factor`` entries along ``dim`` (< 0), as views."""
    cells = x.unflatten(dim, (-1, factor))
    return cells.select(dim, factor // 2 - 1), cells.select(dim, factor // 2)
