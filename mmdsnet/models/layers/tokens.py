"""Views between DSNet's (B, C, H, W) maps, its channels-last tokens and attention heads."""
from typing import Optional, Sequence, Tuple

import torch


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W, C), the map's tokens with their channels last; a view."""
    return x.permute(0, 2, 3, 1)


def tokens_to_map(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W, C), or (B * H * W, C) as a linear layer returns them, -> (B, C, H, W); a view
    of contiguous tokens."""
    if x.dim() == 2:
        x = x.reshape(-1, height, width, x.shape[-1])
    return x.permute(0, 3, 1, 2)


def split_qkv(qkv: torch.Tensor, num_heads: int, batch: int) -> Tuple[torch.Tensor, ...]:
    """(B * N, 3 * C), or any (B, ..., 3 * C) with the N tokens of an image in between,
    -> query, key, value, each (B, heads, N, C // heads).

    The channel axis is laid out as (3, heads, head_dim), the 3 outermost, as in both releases.
    """
    head_dims = qkv.shape[-1] // (3 * num_heads)
    return qkv.reshape(batch, -1, 3, num_heads, head_dims).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(x: torch.Tensor, tokens_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
    """(B, heads, N, head_dim) -> (B * N, heads * head_dim), the 2-d input on which a linear
    layer dispatches no reshapes, or ``tokens_shape``, e.g. that of the attending tokens."""
    batch, num_heads, num_tokens, head_dims = x.shape
    if tokens_shape is None:
        tokens_shape = (batch * num_tokens, num_heads * head_dims)
    return x.transpose(1, 2).reshape(tokens_shape)
