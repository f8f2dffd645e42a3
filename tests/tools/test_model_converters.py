"""Converters from the public DSNet releases, checked against an independent oracle.

The oracle is ``tests/dsnet_releases.py``: it re-implements the releases' network
(``MixVisionTransformer`` / ``MixBlock``) straight from their description, with their parameter
names and no code shared with ``mmdsnet``. Converted weights must give its logits.
"""
import dsnet_releases as releases
import pytest
import torch
from release_checkpoints import write_authors_pth, write_pdparams
from tool_scripts import load_tool

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.checkpoint import UnsafeCheckpointError
from mmdsnet.models import DSNet
from mmdsnet.models.backbones.dsnet_weights import convert_release_state_dict

NUM_CLASSES = releases.NUM_CLASSES
random_release_state_dict = releases.random_release_state_dict
release_forward = releases.release_forward


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
    src = write_authors_pth(release_state_dict, tmp_path / 'dsnet_tiny.pth')
    dst = tmp_path / 'converted.pth'
    load_tool('dsnet2mmdsnet', 'model_converters').main([src, str(dst)])

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
    tool = load_tool('dsnet2mmdsnet', 'model_converters')
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


@pytest.mark.parametrize('prefix', ['backbone.', None])
def test_backbone_only_loads_through_init_cfg(tmp_path, release_state_dict, prefix):
    # Without a prefix, the converted file's meta names where the backbone's keys are.
    src, dst = tmp_path / 'dsnet_tiny.pth', tmp_path / 'backbone.pth'
    without_head = {k: v for k, v in release_state_dict.items() if not k.startswith('head.')}
    torch.save({'model': without_head}, src)
    load_tool('dsnet2mmdsnet', 'model_converters').main([str(src), str(dst), '--backbone-only'])

    state_dict = torch.load(dst, weights_only=True)['state_dict']
    assert all(key.startswith('backbone.') for key in state_dict)
    backbone = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix=prefix))
    backbone.init_weights()
    expected = {k[len('backbone.'):]: v for k, v in state_dict.items()}
    assert_same_state_dicts(backbone.state_dict(), expected)


def test_paddle2mmdsnet_equals_torch_conversion(tmp_path, release_state_dict):
    src = write_pdparams(release_state_dict, tmp_path / 'DSNet_tiny_pretrained.pdparams')
    dst = tmp_path / 'converted.pth'
    load_tool('paddle2mmdsnet', 'model_converters').main([src, str(dst)])

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
        load_tool('dsnet2mmdsnet', 'model_converters').main([str(src), str(tmp_path / 'out.pth')])


def test_dsnet2mmdsnet_refuses_a_file_without_release_weights(tmp_path):
    src = tmp_path / 'classifier.pth'
    torch.save({'state_dict': {'backbone.stages.0.patch_embed.weight': torch.zeros(1)}}, src)
    with pytest.raises(ValueError, match="classifier.pth.* no DSNet release weights.*"
                       "'patch_embed1.proj.weight'"):
        load_tool('dsnet2mmdsnet', 'model_converters').main([str(src), str(tmp_path / 'out.pth')])
