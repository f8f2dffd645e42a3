"""The attention kernels compute softmax(q k^T * scale) v, with its gradients, like the explicit
form. Which kernel runs where is pinned apart, in ``test_attention_kernel_dispatch.py``."""
import pytest
import torch
import torch.nn.functional as F

from mmdsnet.models.layers import attention, chunked_attention


def explicit(query, key, value, scale):
    return (query @ key.transpose(-2, -1) * scale).softmax(dim=-1) @ value


def random_qkv(batch, heads, num_queries, num_keys, head_dims=8, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, head_dims, generator=generator, dtype=dtype,
                        requires_grad=True) for n in (num_queries, num_keys, num_keys)]


def outputs_and_grads(fn, tensors, grad_out):
    out = fn(*tensors)
    return (out, *torch.autograd.grad(out, tensors, grad_out))


SHAPES = [(1, 1, 300, 7), (2, 3, 17, 130), (1, 2, 1, 1), (3, 1, 64, 64)]


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('chunk_elements', [1, 100, 2**20])
def test_chunked_equals_explicit_with_gradients(shape, chunk_elements):
    tensors = random_qkv(*shape)
    grad_out = torch.randn_like(tensors[0])
    expected = outputs_and_grads(lambda q, k, v: explicit(q, k, v, 0.3), tensors, grad_out)
    actual = outputs_and_grads(lambda q, k, v: chunked_attention(q, k, v, 0.3, 0., chunk_elements),
                               tensors, grad_out)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


def test_chunked_dropout_backward_matches_its_forward():
    # With the global seed fixed, the dropout masks are fixed, so gradcheck compares the
    # analytic backward (which regenerates the masks per block) with finite differences.
    tensors = [t.detach()[..., :4].requires_grad_() for t in random_qkv(1, 2, 9, 5)]

    def fixed_masks(query, key, value):
        torch.manual_seed(0)
        return chunked_attention(query, key, value, 0.5, dropout_p=0.4, chunk_elements=12)

    assert torch.autograd.gradcheck(fixed_masks, tensors)


def test_chunked_dropout_keeps_the_expected_fraction_and_rescales():
    query, key, value = (t.detach() for t in random_qkv(1, 1, 2000, 50, dtype=torch.float32))
    value = torch.ones_like(value)
    torch.manual_seed(0)
    # With all-ones values each output row is the sum of its kept weights / (1 - p): its mean
    # over rows is ~1, and rows are not all equal (masks differ per weight).
    out = chunked_attention(query, key, value, 0.2, dropout_p=0.25, chunk_elements=4096)
    assert abs(out.mean().item() - 1) < 0.02
    assert out[:, :, :, 0].std() > 0.05
    torch.manual_seed(0)
    assert torch.equal(out, chunked_attention(query, key, value, 0.2, 0.25, 4096))
    assert not torch.equal(out, chunked_attention(query, key, value, 0.2, 0.25, 4096))


def test_dispatch_equals_sdpa_in_every_mode():
    tensors = random_qkv(1, 1, 200, 30, dtype=torch.float32)
    grad_out = torch.randn_like(tensors[0])
    expected = outputs_and_grads(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3), tensors, grad_out)
    for fused in (True, False):
        actual = outputs_and_grads(lambda q, k, v: attention(q, k, v, 0.3, 0., fused), tensors,
                                   grad_out)
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e)
