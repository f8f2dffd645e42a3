"""A missing image root or annotation file is an error that names the path."""
import os

import pytest
from mmengine.registry import DefaultScope

import mmdsnet  # noqa: F401
from mmdsnet.launch import load_config

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'configs', 'quickstart')


def build_dataset(config, scope, **overrides):
    from mmengine.registry import DATASETS
    dataset_cfg = load_config(os.path.join(CONFIGS, config)).train_dataloader.dataset
    dataset_cfg.update(overrides)
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(dataset_cfg)


def test_missing_classification_image_root(tmp_path):
    missing = tmp_path / 'no_digits_here'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_dataset('dsnet_tiny_digits.py', 'mmpretrain', data_root=str(missing))


def test_missing_coco_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'annotations' / 'missing.json')):
        build_dataset('mask_rcnn_dsnet_tiny_shapes.py', 'mmdet', data_root=str(tmp_path),
                      ann_file='annotations/missing.json')
