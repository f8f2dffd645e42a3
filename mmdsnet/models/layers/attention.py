"""Multi-head attention ``softmax(q k^T * scale) v`` for DSNet, with a kernel chosen per case.

DSNet's co-attention pairs every full-resolution local token with every global token, so at
detection sizes a materialised weight matrix would dominate the backbone's memory; every fused
path here avoids it. :func:`attention` runs PyTorch's ``scaled_dot_product_attention`` where it
can, and :class:`ChunkedAttention` on CPU with dropout, where PyTorch's fused kernel cannot
apply dropout. All paths compute the same function up to float rounding (with dropout they draw
different, equally distributed masks). Which case gets which kernel, and the measurements
behind it: docs/benchmarks.md, "Kernel and DDP details".
"""
import torch
import torch.nn.functional as F

#: Elements of the (groups, queries, keys) weight block that :class:`ChunkedAttention` holds at
#: once (4 MiB of floats; docs/benchmarks.md says why this size).
CHUNK_ELEMENTS = 2**20


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
              dropout_p: float, fused: bool) -> torch.Tensor:
    """softmax(query @ key^T * scale) @ value on (B, heads, N, head_dim) tensors.

    Args:
        query (Tensor): (B, heads, Nq, head_dim).
        key (Tensor): (B, heads, Nk, head_dim).
        value (Tensor): (B, heads, Nk, head_dim).
        scale (float): Multiplies the logits.
        dropout_p (float): Dropout on the attention weights (0 in eval mode).
        fused (bool): Never materialise the full weights. False computes them explicitly, as
            the releases do, for checking, FLOP counting and exporters without the fused op.

    Returns:
        Tensor: (B, heads, Nq, head_dim).
    """
    if not fused:
        weights = (query @ key.transpose(-2, -1) * scale).softmax(dim=-1)
        return F.dropout(weights, dropout_p, training=dropout_p > 0) @ value
    if dropout_p > 0 and _eager_cpu(query):
        return chunked_attention(query, key, value, scale, dropout_p)
    return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p, scale=scale)


def _eager_cpu(query: torch.Tensor) -> bool:
    return (query.device.type == 'cpu' and query.dtype in (torch.float32, torch.float64)
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not is_compiling())


def is_compiling() -> bool:
    """True while dynamo traces the caller (``torch.compile``, ``torch.export``)."""
    # torch.compiler.is_compiling came in torch 2.3; torch 2.1 and 2.2 have torch._dynamo's
    if hasattr(torch.compiler, 'is_compiling'):
        return torch.compiler.is_compiling()
    from torch._dynamo import is_compiling as dynamo_is_compiling
    return dynamo_is_compiling()


def chunked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      scale: float, dropout_p: float = 0.,
                      chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """:func:`attention` through :class:`ChunkedAttention`; same shapes."""
    *batch_dims, num_queries, head_dims = query.shape
    groups = query.shape[:-2].numel()
    out = ChunkedAttention.apply(
        query.reshape(groups, num_queries, head_dims),
        key.reshape(groups, key.shape[-2], head_dims),
        value.reshape(groups, value.shape[-2], value.shape[-1]), scale, dropout_p,
        chunk_elements)
    return out.view(*batch_dims, num_queries, value.shape[-1])


class ChunkedAttention(torch.autograd.Function):
    """Attention on (G, N, head_dim) tensors, a block of queries at a time, recomputing the
    weights in the backward pass instead of storing them, so that its memory is one block.

    Each query block draws its dropout mask from a generator seeded with ``seed + block index``,
    so the backward pass regenerates the forward pass's masks; the seed comes from the global
    generator, so ``torch.manual_seed`` makes dropout reproducible as usual.
    """

    @staticmethod
    def forward(ctx, query, key, value, scale, dropout_p, chunk_elements):
        seed = _draw_seed() if dropout_p > 0 else 0
        out = query.new_empty(*query.shape[:-1], value.shape[-1])
        for index, rows in enumerate(_query_blocks(query, key, chunk_elements)):
            weights = _block_weights(query[:, rows], key, scale)
            if dropout_p > 0:
                weights = _dropped(weights, _keep_mask(weights, dropout_p, seed + index),
                                   dropout_p)
            torch.bmm(weights, value, out=out[:, rows])
        ctx.save_for_backward(query, key, value, out)
        ctx.scale, ctx.dropout_p, ctx.seed, ctx.chunk_elements = (scale, dropout_p, seed,
                                                                  chunk_elements)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        query, key, value, out = ctx.saved_tensors
        scale, dropout_p = ctx.scale, ctx.dropout_p
        grad_out = grad_out.contiguous()
        grad_query = torch.empty_like(query)
        grad_key = torch.zeros_like(key)
        grad_value = torch.zeros_like(value)
        # softmax backward needs rowsum(weights * grad_weights), which equals
        # rowsum(grad_out * out): (G, Nq) work instead of (G, Nq, Nk).
        row_dots = (grad_out * out).sum(dim=-1, keepdim=True)
        for index, rows in enumerate(_query_blocks(query, key, ctx.chunk_elements)):
            query_block, grad_out_block = query[:, rows], grad_out[:, rows]
            weights = _block_weights(query_block, key, scale)
            grad_weights = torch.bmm(grad_out_block, value.transpose(1, 2))
            if dropout_p > 0:
                kept = _keep_mask(weights, dropout_p, ctx.seed + index)
                grad_value.baddbmm_(_dropped(weights, kept, dropout_p).transpose(1, 2),
                                    grad_out_block)
                grad_weights = _dropped(grad_weights, kept, dropout_p)
            else:
                grad_value.baddbmm_(weights.transpose(1, 2), grad_out_block)
            grad_logits = grad_weights.sub_(row_dots[:, rows]).mul_(weights)
            torch.bmm(grad_logits, key, out=grad_query[:, rows]).mul_(scale)
            grad_key.baddbmm_(grad_logits.transpose(1, 2), query_block, alpha=scale)
        return grad_query, grad_key, grad_value, None, None, None


def _query_blocks(query: torch.Tensor, key: torch.Tensor, chunk_elements: int):
    """Slices of the query axis whose (G, rows, Nk) weight block has at most ``chunk_elements``
    elements (at least one row)."""
    groups, num_queries = query.shape[:2]
    rows = max(1, chunk_elements // max(1, groups * key.shape[1]))
    return [slice(start, min(start + rows, num_queries)) for start in range(0, num_queries, rows)]


def _block_weights(query_block: torch.Tensor, key: torch.Tensor, scale: float) -> torch.Tensor:
    logits = torch.baddbmm(query_block.new_empty(()), query_block, key.transpose(1, 2), beta=0,
                           alpha=scale)
    return logits.softmax(dim=-1)


def _draw_seed() -> int:
    return int(torch.randint(2**62, (), dtype=torch.int64))


def _keep_mask(weights: torch.Tensor, dropout_p: float, seed: int) -> torch.Tensor:
    generator = torch.Generator(device=weights.device).manual_seed(seed)
    return torch.rand(weights.shape, generator=generator, device=weights.device,
                      dtype=weights.dtype) >= dropout_p


def _dropped(values: torch.Tensor, kept: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """Dropout with a given mask: the kept entries scaled by 1 / (1 - p), the rest 0."""
    return values * kept * (1 / (1 - dropout_p))
