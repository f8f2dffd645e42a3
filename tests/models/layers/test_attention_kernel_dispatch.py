"""Which attention kernel runs where: memory and speed properties, not results.

These tests pin the kernel that :func:`mmdsnet.models.layers.attention` dispatches to and what it
keeps for the backward pass; ``test_attention_kernels.py`` pins that every kernel computes the
same function. Why each case gets its kernel: docs/benchmarks.md, "Kernel and DDP details".
"""
import torch
import torch.nn.functional as F

from mmdsnet.models.layers import attention


def query_key_value(num_queries, num_keys, head_dims=8):
    """(1, 1, N, head_dims) float32 tensors that require gradients."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(1, 1, n, head_dims, generator=generator, requires_grad=True)
            for n in (num_queries, num_keys, num_keys)]


def autograd_nodes(grad_fn):
    """Every node of the backward graph below ``grad_fn``."""
    stack, seen = [grad_fn], []
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.append(node)
            stack += [next_node for next_node, _ in node.next_functions]
    return seen


def test_cpu_dropout_runs_chunked_and_saves_no_weight_matrix():
    query, key, value = query_key_value(3000, 500)
    out = attention(query, key, value, 0.3, dropout_p=0.1, fused=True)
    nodes = [node for node in autograd_nodes(out.grad_fn)
             if type(node).__name__ == 'ChunkedAttentionBackward']
    assert len(nodes) == 1
    # query, key, value and the output: nothing of the 3000 x 500 weights.
    assert [tuple(t.shape) for t in nodes[0].saved_tensors] == [(1, 3000, 8), (1, 500, 8),
                                                                (1, 500, 8), (1, 3000, 8)]


def test_no_dropout_runs_sdpa_everywhere(monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(*args, **kwargs):
        calls.append(kwargs['dropout_p'])
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording_sdpa)
    query, key, value = query_key_value(300, 50)
    attention(query, key, value, 0.3, dropout_p=0., fused=True).sum().backward()
    assert calls == [0.]
