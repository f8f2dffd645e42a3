"""DSNet by name: the metafiles, their registration with MMPretrain on ``import mmdsnet``, and
README's model-zoo tables, which must show what the metafiles say."""
import re
import shutil
import warnings
from pathlib import Path

import dsnet_releases as releases
import pytest
import torch
import yaml
from mmengine.config import Config
from release_checkpoints import write_pdparams

import mmdsnet  # noqa: F401  registers the models by name
from mmdsnet import model_index
from mmdsnet.models import DSNet
from mmdsnet.models.backbones.dsnet_weights import cached_weights_path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMES = ['dsnet-base_3rdparty_in1k', 'dsnet-small_3rdparty_in1k', 'dsnet-tiny_3rdparty_in1k']


def classification_models():
    return model_index.load_metafile(model_index.CLASSIFICATION_METAFILE)['Models']


def detection_models():
    return model_index.load_metafile(model_index.DETECTION_METAFILE)['Models']


def segmentation_models():
    return model_index.load_metafile(model_index.SEGMENTATION_METAFILE)['Models']


@pytest.fixture(scope='module')
def tiny_pdparams(tmp_path_factory):
    state_dict = releases.random_release_state_dict()
    path = tmp_path_factory.mktemp('release') / 'DSNet_tiny_pretrained.pdparams'
    return write_pdparams(state_dict, path), state_dict


def test_list_models_finds_the_imagenet_models():
    from mmpretrain import list_models
    assert list_models('*dsnet*') == NAMES
    assert list_models('dsnet', task='Image Classification') == NAMES


def test_get_model_by_name_loads_a_release_file(tiny_pdparams):
    from mmpretrain import get_model
    path, state_dict = tiny_pdparams
    model = get_model('dsnet-tiny_3rdparty_in1k', pretrained=path)
    assert model.backbone.depths == [2, 2, 4, 1]
    assert len(model._dataset_meta['classes']) == 1000  # ImageNet's names, from the config
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), releases.release_forward(state_dict, x), rtol=1e-5,
                                   atol=1e-5)


def test_get_model_pretrained_true_loads_the_paddleclas_release_from_the_cache(
        tiny_pdparams, tmp_path, monkeypatch):
    """The metafile's ``Weights`` URL, found in torch's hub cache (placed there as the
    download would be, since tests run offline); downloading is tested in
    tests/models/backbones/test_dsnet_weights.py."""
    from mmpretrain import get_model
    path, state_dict = tiny_pdparams
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = next(model['Weights'] for model in classification_models()
               if model['Name'] == 'dsnet-tiny_3rdparty_in1k')
    cached = Path(cached_weights_path(url))
    assert cached.parent == tmp_path / 'hub' / 'checkpoints'
    cached.parent.mkdir(parents=True)
    shutil.copy(path, cached)
    with warnings.catch_warnings():
        warnings.filterwarnings('error', 'Unable to find pre-defined checkpoint')
        model = get_model('dsnet-tiny_3rdparty_in1k', pretrained=True)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), releases.release_forward(state_dict, x), rtol=1e-5,
                                   atol=1e-5)


def test_inferencer_by_name(tiny_pdparams, tmp_path):
    import cv2
    import numpy as np
    from mmpretrain import ImageClassificationInferencer
    image = tmp_path / 'image.png'
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8))
    inferencer = ImageClassificationInferencer('dsnet-tiny_3rdparty_in1k',
                                               pretrained=tiny_pdparams[0])
    result = inferencer(str(image))[0]
    assert 0 <= result['pred_label'] < 1000 and isinstance(result['pred_class'], str)


def test_metafile_models_name_their_config_and_arch():
    for model in classification_models():
        arch = re.fullmatch(r'dsnet-(\w+)_3rdparty_in1k', model['Name']).group(1)
        config = Config.fromfile(REPO_ROOT / model['Config'])
        assert config.model.backbone.arch == arch, model['Name']
        assert model['Converted From']['Weights'].endswith(f'DSNet_{arch}_pretrained.pdparams')
        # we host no converted file: pretrained=True loads the release, converted in memory
        assert model['Weights'] == model['Converted From']['Weights']


@pytest.mark.parametrize('models, number', [(detection_models, 4), (segmentation_models, 4)],
                         ids=['coco', 'ade20k'])
def test_dense_metafiles_name_existing_configs_and_report_nothing_unmeasured(models, number):
    models = models()
    assert len({model['Name'] for model in models}) == len(models) == number
    for model in models:
        assert (REPO_ROOT / model['Config']).is_file(), model['Config']
        assert 'Results' not in model and 'Weights' not in model, model['Name']
    with open(model_index.MODEL_INDEX) as file:
        assert yaml.safe_load(file)['Import'] == [
            'configs/metafile.yml', 'configs/metafile_coco.yml', 'configs/metafile_ade20k.yml']


def test_segmentation_metafile_agrees_with_the_configs():
    for model in segmentation_models():
        config = Config.fromfile(REPO_ROOT / model['Config'])
        arch = re.search(r'dsnet-([a-z]+)_', model['Name']).group(1)
        assert config.model.backbone.arch == arch, model['Name']
        assert model['Metadata']['Iterations'] == config.train_cfg.max_iters
        assert model['Metadata']['Batch Size'] == 8 * config.train_dataloader.batch_size
        assert model['Metadata']['Crop Size'] == str(config.crop_size)
        head = config.model.decode_head.type
        assert {'UPerHead': 'UPerNet', 'FPNHead': 'Semantic FPN'}[head] == model['In Collection']


def test_readme_model_zoo_tables_are_rendered_from_the_metafiles():
    readme = (REPO_ROOT / 'README.md').read_text()
    assert model_index.model_zoo_tables() in readme, (
        "README's model-zoo tables differ from the metafiles: paste the output of "
        '`.venv/bin/python -m mmdsnet.model_index` into README.md')


def test_readme_arch_table_agrees_with_the_metafile():
    readme = (REPO_ROOT / 'README.md').read_text()
    by_arch = {re.search(r'dsnet-([a-z]+)_', model['Name']).group(1): model
               for model in classification_models()}
    rows = re.findall(r'^\| (tiny|small|base) +\|(.*)\|$', readme, flags=re.MULTILINE)
    assert [arch for arch, _ in rows] == ['tiny', 'small', 'base']
    for arch, cells in rows:
        embed_dims, depths, heads, params, flops, top1 = map(str.strip, cells.split('|'))
        setting = DSNet.arch_zoo[arch]
        assert embed_dims == ', '.join(map(str, setting['embed_dims']))
        assert depths == ', '.join(map(str, setting['depths']))
        assert heads == ', '.join(map(str, setting['num_heads']))
        model = by_arch[arch]
        assert params == f"{model['Metadata']['Parameters']:,}"
        assert flops == f"{model['Metadata']['FLOPs'] / 1e9:.2f} G"
        paddleclas = float(top1.split('/')[1])
        assert paddleclas == model['Results'][0]['Metrics']['Top 1 Accuracy']
