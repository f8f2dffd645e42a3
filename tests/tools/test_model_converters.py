"""Converters from the public DSNet releases, checked against an independent oracle.

``release_forward`` below re-implements the releases' forward pass (``MixVisionTransformer`` /
``MixBlock``) straight from their description, over release-named weights, with no code shared
with ``mmdsnet``. Converted weights must give its logits.
"""
import argparse
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.checkpoint import UnsafeCheckpointError
from mmdsnet.models import DSNet
from mmdsnet.models.backbones.dsnet_convert import convert_release_state_dict

EMBED_DIMS = (64, 128, 320, 512)
NUM_HEADS = (1, 2, 5, 8)
GLOBAL_DOWNSAMPLE = (8, 4, 2, 2)
TINY_DEPTHS = (2, 2, 4, 1)
NUM_CLASSES = 1000
TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'model_converters'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- release-layout weights


def release_shapes(depths):
    """Names and shapes of the releases' state dict (BatchNorm num_batches_tracked aside)."""

    def batch_norm(name, channels):
        return {f'{name}.{p}': (channels, )
                for p in ('weight', 'bias', 'running_mean', 'running_var')}

    def affine(name, weight_shape):
        return {f'{name}.weight': weight_shape, f'{name}.bias': (weight_shape[0], )}

    shapes = {}
    in_channels = 3
    for stage, (dim, depth) in enumerate(zip(EMBED_DIMS, depths), start=1):
        patch = 4 if stage == 1 else 2
        shapes.update(affine(f'patch_embed{stage}.proj', (dim, in_channels, patch, patch)))
        local, glob = dim // 2, dim - dim // 2
        for j in range(depth):
            p = f'blocks{stage}.{j}.'
            shapes.update(affine(p + 'pos_embed', (dim, 1, 3, 3)))
            shapes.update(batch_norm(p + 'norm1', dim))
            shapes.update(affine(p + 'conv1', (dim, dim, 1, 1)))
            shapes.update(affine(p + 'conv2', (dim, dim, 1, 1)))
            shapes.update(batch_norm(p + 'norm_conv1', local))
            shapes.update(affine(p + 'norm_sa1', (glob, )))
            shapes.update(affine(p + 'conv', (local, 1, 3, 3)))
            shapes.update(affine(p + 'channel_up', (3 * glob, glob)))
            shapes.update(affine(p + 'cross_channel_up_conv', (3 * local, local, 1, 1)))
            shapes.update(affine(p + 'cross_channel_up_sa', (3 * glob, glob)))
            shapes.update(affine(p + 'fuse_channel_conv', (local, local)))
            shapes.update(affine(p + 'fuse_channel_sa', (glob, glob)))
            shapes.update(batch_norm(p + 'norm_conv2', local))
            shapes.update(affine(p + 'norm_sa2', (glob, )))
            shapes.update(batch_norm(p + 'norm2', dim))
            shapes.update(affine(p + 'mlp.fc1', (4 * dim, dim, 1, 1)))
            shapes.update(affine(p + 'mlp.fc2', (dim, 4 * dim, 1, 1)))
        in_channels = dim
    shapes.update(batch_norm('norm', EMBED_DIMS[-1]))
    shapes.update(affine('head', (NUM_CLASSES, EMBED_DIMS[-1])))
    return shapes


def random_release_state_dict(depths=TINY_DEPTHS, seed=0):
    """Random weights in the authors' PyTorch layout, scaled to keep activations moderate."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for name, shape in release_shapes(depths).items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith('running_var'):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) > 1:
            value = noise * 0.5 / np.sqrt(np.prod(shape[1:]))
        elif name.endswith('.weight'):
            value = 1 + 0.1 * noise
        else:
            value = 0.1 * noise
        state_dict[name] = value
        if name.endswith('running_var'):
            state_dict[name.replace('running_var', 'num_batches_tracked')] = torch.tensor(100)
    return state_dict


def to_pdparams_arrays(state_dict):
    """The same weights as PaddleClas stores them."""
    arrays = {}
    for key, value in state_dict.items():
        prefix, _, param = key.rpartition('.')
        if param == 'num_batches_tracked':
            continue
        param = {'running_mean': '_mean', 'running_var': '_variance'}.get(param, param)
        array = value.numpy()
        arrays[f'{prefix}.{param}'] = array.T.copy() if array.ndim == 2 else array.copy()
    return arrays


# ---------------------------------------------------------------- the oracle


def release_forward(sd, x, depths=TINY_DEPTHS):
    """Logits of the releases' network for images x, from release-named weights (eval)."""

    def conv(name, t, **kwargs):
        return F.conv2d(t, sd[f'{name}.weight'], sd[f'{name}.bias'], **kwargs)

    def linear(name, t):
        return F.linear(t, sd[f'{name}.weight'], sd[f'{name}.bias'])

    def batch_norm(name, t):
        return F.batch_norm(t, sd[f'{name}.running_mean'], sd[f'{name}.running_var'],
                            sd[f'{name}.weight'], sd[f'{name}.bias'], False, 0., 1e-5)

    def layer_norm(name, t):
        return F.layer_norm(t, t.shape[-1:], sd[f'{name}.weight'], sd[f'{name}.bias'], 1e-5)

    def heads(qkv, num_heads):
        b, n, c3 = qkv.shape
        return qkv.reshape(b, n, 3, num_heads, c3 // 3 // num_heads).permute(2, 0, 3, 1, 4)

    def attend(q, k, v, scale):
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale, dim=-1)
        out = torch.matmul(weights, v)
        return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)

    def mix_block(p, x, num_heads, ratio):
        dim = x.shape[1]
        dim_conv = int(dim * 0.5)
        dim_sa = dim - dim_conv
        scale = (dim_sa // num_heads)**-0.5
        x = x + conv(p + 'pos_embed', x, padding=1, groups=dim)
        b, _, h, w = x.shape
        residual = x
        x = conv(p + 'conv1', batch_norm(p + 'norm1', x))
        sa, cv = x[:, :dim_sa], x[:, dim_sa:]
        cv = cv + conv(p + 'conv', batch_norm(p + 'norm_conv1', cv), padding=1, groups=dim_conv)

        sa = F.interpolate(sa, size=(h // ratio, w // ratio), mode='bilinear', align_corners=False)
        hd, wd = sa.shape[-2:]
        sa = sa.flatten(2).transpose(1, 2)
        q, k, v = heads(linear(p + 'channel_up', layer_norm(p + 'norm_sa1', sa)), num_heads)
        sa = sa + attend(q, k, v, scale)

        cv_qkv = conv(p + 'cross_channel_up_conv', batch_norm(p + 'norm_conv2', cv))
        cq, ck, cvv = heads(cv_qkv.flatten(2).transpose(1, 2), num_heads)
        sq, sk, sv = heads(linear(p + 'cross_channel_up_sa', layer_norm(p + 'norm_sa2', sa)),
                           num_heads)
        cv_out = linear(p + 'fuse_channel_conv', attend(cq, sk, sv, scale))
        cv = cv + cv_out.reshape(b, h, w, dim_conv).permute(0, 3, 1, 2)
        sa = sa + linear(p + 'fuse_channel_sa', attend(sq, ck, cvv, scale))
        sa = sa.reshape(b, hd, wd, dim_sa).permute(0, 3, 1, 2)
        sa = F.interpolate(sa, size=(h, w), mode='bilinear', align_corners=False)

        x = residual + conv(p + 'conv2', torch.cat([cv, sa], dim=1))
        mlp = conv(p + 'mlp.fc2', F.gelu(conv(p + 'mlp.fc1', batch_norm(p + 'norm2', x))))
        return x + mlp

    for stage in range(4):
        patch = 4 if stage == 0 else 2
        x = conv(f'patch_embed{stage + 1}.proj', x, stride=patch)
        for j in range(depths[stage]):
            x = mix_block(f'blocks{stage + 1}.{j}.', x, NUM_HEADS[stage], GLOBAL_DOWNSAMPLE[stage])
    x = batch_norm('norm', x)
    return linear('head', x.flatten(2).mean(-1))


# ---------------------------------------------------------------- helpers


def build_classifier(arch='tiny'):
    from mmpretrain.registry import MODELS
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='DSNet', arch=arch),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=512))).eval()


def assert_same_state_dicts(a, b):
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope='module')
def release_state_dict():
    return random_release_state_dict()


@pytest.fixture(scope='module')
def images():
    # 64 x 64 takes the exact-shortcut downsampling everywhere; 96 x 136 also the general one.
    return [torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)),
            torch.rand(1, 3, 96, 136, generator=torch.Generator().manual_seed(2))]


# ---------------------------------------------------------------- tests


def test_converted_release_weights_give_release_logits(release_state_dict, images):
    model = build_classifier()
    model.load_state_dict(convert_release_state_dict(release_state_dict), strict=True)
    with torch.no_grad():
        for x in images:
            expected = release_forward(release_state_dict, x)
            assert expected.std() > 0.1  # the check below is not vacuous
            torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_dsnet2mmdsnet_cli(tmp_path, release_state_dict, images):
    src, dst = tmp_path / 'dsnet_tiny.pth', tmp_path / 'converted.pth'
    torch.save({
        'model': release_state_dict,
        'optimizer': {'state': {}, 'param_groups': []},
        'lr_scheduler': {'last_epoch': 299},
        'epoch': 299,
        'args': argparse.Namespace(model='dsnet_tiny', lr=5e-4),
    }, src)
    load_tool('dsnet2mmdsnet').main([str(src), str(dst)])

    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['arch'] == 'tiny'
    assert checkpoint['meta']['source_epoch'] == 299
    model = build_classifier()
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    x = images[1]
    with torch.no_grad():
        torch.testing.assert_close(model(x), release_forward(release_state_dict, x), rtol=1e-5,
                                   atol=1e-5)


def test_dsnet2mmdsnet_bare_state_dict_and_ema(tmp_path, release_state_dict):
    tool = load_tool('dsnet2mmdsnet')
    bare, ema = tmp_path / 'bare.pth', tmp_path / 'ema.pth'
    torch.save(release_state_dict, bare)
    ema_weights = {key: value + 1 for key, value in release_state_dict.items()}
    torch.save({'model': release_state_dict, 'model_ema': ema_weights}, ema)

    tool.main([str(bare), str(tmp_path / 'bare_out.pth')])
    tool.main([str(ema), str(tmp_path / 'ema_out.pth'), '--ema'])
    assert_same_state_dicts(
        torch.load(tmp_path / 'bare_out.pth', weights_only=True)['state_dict'],
        convert_release_state_dict(release_state_dict))
    assert_same_state_dicts(
        torch.load(tmp_path / 'ema_out.pth', weights_only=True)['state_dict'],
        convert_release_state_dict(ema_weights))
    with pytest.raises(ValueError, match='model_ema'):
        tool.main([str(bare), str(tmp_path / 'x.pth'), '--ema'])


def test_backbone_only_loads_through_init_cfg(tmp_path, release_state_dict):
    src, dst = tmp_path / 'dsnet_tiny.pth', tmp_path / 'backbone.pth'
    without_head = {k: v for k, v in release_state_dict.items() if not k.startswith('head.')}
    torch.save({'model': without_head}, src)
    load_tool('dsnet2mmdsnet').main([str(src), str(dst), '--backbone-only'])

    state_dict = torch.load(dst, weights_only=True)['state_dict']
    assert all(key.startswith('backbone.') for key in state_dict)
    backbone = DSNet(
        'tiny', init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    backbone.init_weights()
    expected = {k[len('backbone.'):]: v for k, v in state_dict.items()}
    assert_same_state_dicts(backbone.state_dict(), expected)


def test_paddle2mmdsnet_equals_torch_conversion(tmp_path, release_state_dict):
    src, dst = tmp_path / 'DSNet_tiny_pretrained.pdparams', tmp_path / 'converted.pth'
    arrays = to_pdparams_arrays(release_state_dict)
    # Paddle's own bookkeeping entry, present in real files.
    arrays['StructuredToParameterName@@'] = {key: f'param_{i}' for i, key in enumerate(arrays)}
    with open(src, 'wb') as file:
        pickle.dump(arrays, file, protocol=4)  # paddle.save's default protocol
    load_tool('paddle2mmdsnet').main([str(src), str(dst)])

    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['arch'] == 'tiny'
    converted = checkpoint['state_dict']
    expected = convert_release_state_dict(release_state_dict)
    for key, value in expected.items():
        if key.endswith('num_batches_tracked'):
            expected[key] = torch.tensor(0)
    assert_same_state_dicts(converted, expected)
    build_classifier().load_state_dict(converted, strict=True)


def test_unknown_and_missing_keys_are_listed(release_state_dict):
    broken = dict(release_state_dict)
    del broken['blocks3.1.channel_up.weight']
    broken['blocks3.1.attn.proj.weight'] = torch.zeros(1)
    broken['pos_drop.weight'] = torch.zeros(1)
    with pytest.raises(ValueError) as error:
        convert_release_state_dict(broken)
    message = str(error.value)
    assert "unknown keys ['blocks3.1.attn.proj.weight', 'pos_drop.weight']" in message
    assert "missing keys ['blocks3.1.channel_up.weight']" in message

    without_head = {k: v for k, v in release_state_dict.items() if not k.startswith('head.')}
    with pytest.raises(ValueError, match=r"missing keys \['head.weight', 'head.bias'\]"):
        convert_release_state_dict(without_head)


def test_converter_refuses_unsafe_pickles(tmp_path, release_state_dict):
    src = tmp_path / 'evil.pth'
    torch.save({'model': release_state_dict, 'extra': pytest.approx(1)}, src)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_tool('dsnet2mmdsnet').main([str(src), str(tmp_path / 'out.pth')])
