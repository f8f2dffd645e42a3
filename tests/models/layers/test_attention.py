"""attention() computes softmax(q k^T * scale) v, with its gradients and dropout, in both forms,
and the fused form is PyTorch's scaled_dot_product_attention."""
import pytest
import torch
import torch.nn.functional as F

from mmdsnet.models.layers import attention


def explicit(query, key, value, scale):
    return (query @ key.transpose(-2, -1) * scale).softmax(dim=-1) @ value


def random_qkv(batch, heads, num_queries, num_keys, head_dims=8, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, head_dims, generator=generator, dtype=dtype,
                        requires_grad=True) for n in (num_queries, num_keys, num_keys)]


def outputs_and_grads(fn, tensors, grad_out):
    out = fn(*tensors)
    return (out, *torch.autograd.grad(out, tensors, grad_out))


@pytest.mark.parametrize('shape', [(1, 1, 300, 7), (2, 3, 17, 130), (1, 2, 1, 1), (3, 1, 64, 64)])
@pytest.mark.parametrize('fused', [True, False])
def test_equals_explicit_with_gradients(shape, fused):
    tensors = random_qkv(*shape)
    grad_out = torch.randn_like(tensors[0])
    expected = outputs_and_grads(lambda q, k, v: explicit(q, k, v, 0.3), tensors, grad_out)
    actual = outputs_and_grads(lambda q, k, v: attention(q, k, v, 0.3, 0., fused), tensors,
                               grad_out)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize('dropout_p', [0., 0.1])
def test_fused_is_sdpa_and_explicit_is_not(monkeypatch, dropout_p):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(*args, **kwargs):
        calls.append((kwargs['dropout_p'], kwargs['scale']))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording_sdpa)
    query, key, value = random_qkv(1, 1, 30, 5, dtype=torch.float32)
    attention(query, key, value, 0.3, dropout_p, fused=True).sum().backward()
    assert calls == [(dropout_p, 0.3)]
    attention(query, key, value, 0.3, dropout_p, fused=False)
    assert len(calls) == 1


@pytest.mark.parametrize('fused', [True, False])
def test_dropout_keeps_the_expected_fraction_and_rescales(fused):
    query, key, value = (t.detach() for t in random_qkv(1, 1, 2000, 50, dtype=torch.float32))
    value = torch.ones_like(value)
    torch.manual_seed(0)
    # With all-ones values each output row is the sum of its kept weights / (1 - p): its mean
    # over rows is ~1, and rows are not all equal (masks differ per weight).
    out = attention(query, key, value, 0.2, 0.25, fused)
    assert abs(out.mean().item() - 1) < 0.02
    assert out[:, :, :, 0].std() > 0.05
    torch.manual_seed(0)
    assert torch.equal(out, attention(query, key, value, 0.2, 0.25, fused))
    assert not torch.equal(out, attention(query, key, value, 0.2, 0.25, fused))
    # No dropout (eval mode): the weights sum to 1 in every row.
    torch.testing.assert_close(attention(query, key, value, 0.2, 0., fused), torch.ones_like(out))
