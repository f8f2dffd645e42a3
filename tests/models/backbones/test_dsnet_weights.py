"""mmdsnet.models.backbones.dsnet_weights: strict loading names what does not fit, and the public
releases' weight files load as they are, converted in memory: ``init_cfg``
Pretrained on a DSNet (with and without ``prefix='backbone.'``) and MMEngine's
``load_checkpoint`` on a whole classifier (what ``get_model(..., pretrained=...)``,
``load_from`` and the inferencers run) take the authors' ``.pth`` and PaddleClas' ``.pdparams``.
The classifier must give the releases' logits (the oracle of ``tests/dsnet_releases.py``).
"""
import dsnet_releases as releases
import pytest
import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint
from release_checkpoints import write_authors_pth, write_pdparams

import mmdsnet  # noqa: F401  registers DSNet and the release-aware loader
from mmdsnet.models import DSNet
from mmdsnet.models.backbones.dsnet_weights import (convert_release_state_dict,
                                                    load_pretrained_strictly, read_weights)


@pytest.fixture(scope='module')
def release_state_dict():
    return releases.random_release_state_dict()


@pytest.fixture(scope='module', params=['authors_pth', 'bare_pth', 'pdparams'])
def release_file(request, release_state_dict, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == 'authors_pth':
        return write_authors_pth(release_state_dict, folder / 'dsnet_tiny.pth')
    if request.param == 'bare_pth':
        torch.save(release_state_dict, folder / 'dsnet_tiny_bare.pth')
        return str(folder / 'dsnet_tiny_bare.pth')
    return write_pdparams(release_state_dict, folder / 'DSNet_tiny_pretrained.pdparams')


def build_classifier():
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='DSNet', arch='tiny'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=releases.NUM_CLASSES, in_channels=512)))


def expected_backbone_weights(release_state_dict):
    """The release's backbone weights under our names (PaddleClas files count no batches)."""
    converted = convert_release_state_dict(release_state_dict, backbone_only=True)
    return {key[len('backbone.'):]: value for key, value in converted.items()
            if not key.endswith('num_batches_tracked')}


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_init_cfg_pretrained_takes_release_files(release_file, release_state_dict, prefix):
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=release_file, prefix=prefix))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in expected_backbone_weights(release_state_dict).items():
        assert torch.equal(loaded[key], value), key


def test_load_checkpoint_gives_the_classifier_the_release_logits(release_file,
                                                                 release_state_dict):
    model = build_classifier()
    load_checkpoint(model, release_file, map_location='cpu', strict=True)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = releases.release_forward(release_state_dict, x)
        assert expected.std() > 0.1  # the comparison below is not vacuous
        torch.testing.assert_close(model.eval()(x), expected, rtol=1e-5, atol=1e-5)


def test_a_release_without_head_loads_as_a_backbone(tmp_path, release_state_dict):
    without_head = {k: v for k, v in release_state_dict.items() if not k.startswith('head.')}
    path = write_pdparams(without_head, tmp_path / 'DSNet_tiny_backbone.pdparams')
    assert all(key.startswith('backbone.')
               for key in read_weights(path)['state_dict'])
    model = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.final_norm.running_var,
                               release_state_dict['norm.running_var'], rtol=0, atol=0)


def test_a_release_file_with_other_keys_names_the_file_and_the_keys(tmp_path,
                                                                    release_state_dict):
    broken = dict(release_state_dict)
    broken['blocks3.1.attn.proj.weight'] = torch.zeros(1)
    del broken['blocks2.0.channel_up.weight']
    path = tmp_path / 'dsnet_variant.pth'
    torch.save({'model': broken}, path)
    model = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"dsnet_variant.pth: .*unknown keys "
                       r"\['blocks3.1.attn.proj.weight'\].*missing keys "
                       r"\['blocks2.0.channel_up.weight'\]"):
        model.init_weights()


def test_other_checkpoints_load_unchanged(tmp_path):
    checkpoint = {'state_dict': {'backbone.stages.0.patch_embed.weight': torch.ones(2)},
                  'meta': {'epoch': 3}}
    path = tmp_path / 'epoch_3.pth'
    torch.save(checkpoint, path)
    loaded = read_weights(str(path))
    assert loaded.keys() == checkpoint.keys() and loaded['meta'] == {'epoch': 3}
    assert torch.equal(loaded['state_dict']['backbone.stages.0.patch_embed.weight'],
                       torch.ones(2))


def test_load_pretrained_strictly_drops_ddp_prefix_and_names_what_does_not_fit(tmp_path):
    source = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    path = tmp_path / 'ddp.pth'
    torch.save({'state_dict': {f'module.0.{key}': value
                               for key, value in source[0].state_dict().items()}}, path)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    load_pretrained_strictly(model, str(path), optional_prefixes=('1.', ))
    assert torch.equal(model[0].weight, source[0].weight)
    with pytest.raises(ValueError, match=r'ddp.pth \(prefix None\) does not fit two linears:\n'
                       r'  missing: 1.bias, 1.weight\n'):
        load_pretrained_strictly(model, str(path), description='two linears')
