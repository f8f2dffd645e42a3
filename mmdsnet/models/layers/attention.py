"""Multi-head attention ``softmax(q k^T * scale) v`` for DSNet.

DSNet's co-attention pairs every full-resolution local token with every global token, so at
detection sizes a materialised weight matrix would dominate the backbone's memory.
:func:`attention` runs PyTorch's ``scaled_dot_product_attention``, whose fused kernels never
materialise it, except on CPU with attention dropout, where PyTorch has no fused kernel and
computes the explicit form; the detection configs fine-tune without attention dropout. Which
case gets which kernel: docs/benchmarks.md, "Kernel and DDP details".
"""
import torch
import torch.nn.functional as F


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
              dropout_p: float, fused: bool) -> torch.Tensor:
    """softmax(query @ key^T * scale) @ value on (B, heads, N, head_dim) tensors.

    Args:
        query (Tensor): (B, heads, Nq, head_dim).
        key (Tensor): (B, heads, Nk, head_dim).
        value (Tensor): (B, heads, Nk, head_dim).
        scale (float): Multiplies the logits.
        dropout_p (float): Dropout on the attention weights (0 in eval mode).
        fused (bool): ``scaled_dot_product_attention``. False computes the weights explicitly,
            as the releases do, for checking, FLOP counting and exporters without the fused op.

    Returns:
        Tensor: (B, heads, Nq, head_dim).
    """
    if fused:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p,
                                              scale=scale)
    weights = (query @ key.transpose(-2, -1) * scale).softmax(dim=-1)
    return F.dropout(weights, dropout_p, training=dropout_p > 0) @ value
