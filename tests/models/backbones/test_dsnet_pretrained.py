"""``init_cfg`` Pretrained loads exactly, and refuses a checkpoint that does not fit."""
import pytest
import torch

import mmdsnet  # noqa: F401
from mmdsnet.models import DSNet


@pytest.fixture(scope='module')
def tiny_classifier_checkpoint(tmp_path_factory):
    """A classifier checkpoint as MMPretrain writes it: backbone.* and head.fc.* keys."""
    backbone = DSNet(arch='tiny')
    backbone.init_weights()
    state_dict = {f'backbone.{key}': value for key, value in backbone.state_dict().items()}
    state_dict['head.fc.weight'] = torch.zeros(1000, 512)
    path = tmp_path_factory.mktemp('ckpt') / 'dsnet_tiny_in1k.pth'
    torch.save({'state_dict': state_dict, 'meta': {'epoch': 300}}, path)
    return str(path), backbone.state_dict()


def test_pretrained_with_prefix_loads_every_backbone_weight(tiny_classifier_checkpoint):
    path, expected = tiny_classifier_checkpoint
    model = DSNet(arch='tiny', out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    # the dense-prediction output norms are new and keep their fresh init
    assert torch.equal(loaded['out_norms.0.weight'], torch.ones(64))


def test_checkpoint_of_another_arch_lists_what_does_not_fit(tiny_classifier_checkpoint):
    path, _ = tiny_classifier_checkpoint
    model = DSNet(arch='small',
                  init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    with pytest.raises(ValueError) as error:
        model.init_weights()
    message = str(error.value)
    assert 'dsnet_tiny_in1k.pth' in message and 'depths [3, 4, 8, 3]' in message
    assert 'missing: stages.0.blocks.2.' in message


def test_checkpoint_with_other_shapes_names_key_and_shapes(tmp_path):
    wide = DSNet(arch=dict(embed_dims=[64, 128, 320, 640], depths=[2, 2, 4, 1],
                           num_heads=[1, 2, 5, 8]))
    path = tmp_path / 'wide.pth'
    torch.save({'state_dict': wide.state_dict()}, path)
    model = DSNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError,
                       match=r'stages.3.patch_embed.bias: checkpoint \(640,\) != model \(512,\)'):
        model.init_weights()
