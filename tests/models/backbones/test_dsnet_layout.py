"""Speed and memory properties of DSNet: memory layouts, which kernels run, call order, and one
compiled graph.

These tests pin how DSNet computes, not what it computes (``test_dsnet.py`` pins the results): a
change that keeps every output can still fail here, and then it has lost speed or memory. The
reasons are in docs/benchmarks.md, "Kernel and DDP details".
"""

import pytest
import torch
import torch.nn.functional as F

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.analysis import OperatorCounter
from mmdsnet.models import DSNet


def test_channels_last_outputs_keep_the_layout():
    model = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, 96, 136))
    assert all(out.is_contiguous(memory_format=torch.channels_last) for out in outs)


@pytest.mark.parametrize('channels_last', [True, False], ids=['channels_last', 'nchw'])
def test_fused_attention_gets_head_dim_contiguous_inputs(monkeypatch, channels_last):
    # Otherwise scaled_dot_product_attention silently falls back to its materialising kernel.
    # The tokens of an NCHW map are strided along channels: the local stream's must be copied.
    strides = []
    sdpa = F.scaled_dot_product_attention

    def spy(query, key, value, **kwargs):
        strides.extend(t.stride(-1) for t in (query, key, value))
        return sdpa(query, key, value, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    with torch.no_grad():
        DSNet('tiny', channels_last=channels_last).eval()(torch.rand(1, 3, 64, 64))
    assert strides == [1] * 3 * 3 * sum(DSNet.arch_zoo['tiny']['depths'])


def test_channels_last_weights_get_gradients_in_their_own_layout():
    # DDP copies (and warns about) every gradient whose strides differ from its parameter's.
    model = DSNet('tiny', out_indices=(0, 1, 2, 3))
    sum(out.mean() for out in model(torch.rand(2, 3, 64, 64))).backward()
    mismatched = [name for name, param in model.named_parameters()
                  if param.grad.stride() != param.stride()]
    assert mismatched == []
    assert model.stages[0].blocks[0].position_encoding.weight.is_contiguous(
        memory_format=torch.channels_last)


@pytest.mark.parametrize('channels_last', [True, False])
def test_global_stream_upsamples_a_channels_last_map(monkeypatch, channels_last):
    # The fast CPU and CUDA upsampling kernels need channels-last input; the generic CUDA one
    # is what made the releases slow.
    layouts = []
    interpolate = F.interpolate

    def spy(x, size, **kwargs):
        assert tuple(size) > tuple(x.shape[-2:]), 'only the upsampling goes to F.interpolate'
        layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        return interpolate(x, size, **kwargs)

    monkeypatch.setattr(F, 'interpolate', spy)
    with torch.no_grad():
        DSNet('tiny', channels_last=channels_last).eval()(torch.rand(1, 3, 64, 64))
    assert layouts == [True] * sum(DSNet.arch_zoo['tiny']['depths'])


def test_channels_last_attention_reads_local_tokens_without_copy(monkeypatch):
    from mmdsnet.models.backbones import dsnet

    projections, qkv_inputs = [], []
    model = DSNet('tiny').eval()
    for stage in model.stages:
        for block in stage.blocks:
            block.co_attention.local_qkv.register_forward_hook(
                lambda module, args, out: projections.append(out.data_ptr()))
    split_qkv = dsnet.split_qkv

    def spy(qkv, *args):
        qkv_inputs.append(qkv.data_ptr())
        return split_qkv(qkv, *args)

    monkeypatch.setattr(dsnet, 'split_qkv', spy)
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    # Per block: the self-attention's qkv, then the co-attention's local and global qkv.
    assert qkv_inputs[1::3] == projections


@pytest.mark.parametrize('training', [False, True])
def test_compiles_to_one_graph(training):
    # fullgraph=True fails on any graph break, including the host syncs of .item()/.tolist();
    # dynamic shapes as detection feeds them (the resize fast path is chosen from the shape).
    # In training, drop path and attention dropout draw the same masks from the same seed.
    torch._dynamo.reset()
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), with_cp=training).train(training)
    compiled = torch.compile(model, fullgraph=True, backend='eager', dynamic=True)
    for shape in [(2, 3, 64, 96), (1, 3, 96, 72)]:
        x = torch.rand(shape, requires_grad=training)
        torch.manual_seed(0)
        outs = compiled(x)
        torch.manual_seed(0)
        expected = model(x)
        for out, reference in zip(outs, expected):
            torch.testing.assert_close(out, reference)


#: The view and layout operators of one DSNet-tiny training step below, as measured (the same
#: with torch 2.1 and 2.14). Every operator costs a host dispatch, which bounds a GPU training
#: step of small kernels (tools/benchmarks/op_count.py); these compute nothing. Linear layers get
#: 2-d token matrices, on which they dispatch no reshapes (3-d tokens cost 144 more here).
RESHAPE_BUDGET = {'view': 243, 'transpose': 54, 'permute': 126, '_unsafe_view': 27, 'clone': 28}


def test_training_step_dispatches_few_reshapes():
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), attn_drop_rate=0.)
    images = torch.rand(2, 3, 64, 64)
    for _ in range(2):  # the first step may dispatch one-off operators
        model.zero_grad(set_to_none=True)
        with OperatorCounter() as counter:
            sum(out.mean() for out in model(images)).backward()
    over_budget = {op: counter.counts[op] for op, budget in RESHAPE_BUDGET.items()
                   if counter.counts[op] > budget}
    assert over_budget == {}, f'budget: {RESHAPE_BUDGET}'
