"""The example configs of docs/your_data.md (configs/examples/): custom classes for classification
and detection, and fine-tuning from a classifier checkpoint.

The custom-class configs train one short epoch and validate through tools/train.py, pointed at
data that the test writes by ``--cfg-options data_root=DIR``, as the doc tells a user to."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from PIL import Image
from tool_scripts import run, tool

from mmdsnet.datasets import SHAPES_CLASSES, write_shapes_dataset
from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, 'configs', 'examples')
CLS_CONFIG = os.path.join(EXAMPLES, 'dsnet_tiny_custom_classes.py')
FINETUNE_CONFIG = os.path.join(EXAMPLES, 'dsnet_tiny_finetune_custom_classes.py')
DET_CONFIG = os.path.join(EXAMPLES, 'mask_rcnn_dsnet_tiny_custom_classes.py')
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def one_epoch(loaders=('train_dataloader', 'val_dataloader')):
    """``--cfg-options`` of a one-epoch run without data workers or checkpoints."""
    options = ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint=None']
    for loader in loaders:
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return options


@pytest.mark.parametrize('path', [CLS_CONFIG, FINETUNE_CONFIG])
def test_classification_examples_set_the_number_of_classes_everywhere(path):
    cfg = Config.fromfile(path)
    assert cfg.model.head.num_classes == cfg.data_preprocessor.num_classes == len(cfg.classes)
    for loader in DATALOADERS:
        assert cfg[loader].dataset.metainfo.classes == cfg.classes
    # the folder layout numbers classes in the sorted order of their folders
    assert cfg.classes == sorted(cfg.classes)
    assert cfg.val_evaluator.topk == cfg.test_evaluator.topk == (1, )  # 3 classes: no top-5


def test_finetune_example_starts_from_the_release_the_detection_configs_use():
    det = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'mask_rcnn_dsnet_tiny_coco.py'))
    assert Config.fromfile(FINETUNE_CONFIG).model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=det.pretrained, prefix='backbone.')


def write_image_folders(root, counts):
    """``root/<split>/<class>/<i>.png``: small random images, ``counts[split][class]`` each."""
    rng = np.random.default_rng(0)
    for split, per_class in counts.items():
        for name, count in per_class.items():
            os.makedirs(root / split / name)
            for index in range(count):
                pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f'{index}.png')


def test_classification_example_trains_on_image_folders(tmp_path):
    data_root = tmp_path / 'my_images'
    write_image_folders(data_root, {'train': {'cat': 2, 'dog': 1, 'fox': 1},
                                    'val': {'cat': 1, 'dog': 1, 'fox': 1}})
    cfg = load_config(CLS_CONFIG, {'data_root': str(data_root)})
    init_default_scope('mmpretrain')
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert list(dataset.metainfo['classes']) == ['cat', 'dog', 'fox']
    infos = [dataset.get_data_info(index) for index in range(len(dataset))]
    assert [(os.path.basename(os.path.dirname(info['img_path'])), info['gt_label'])
            for info in infos] == [('cat', 0), ('cat', 0), ('dog', 1), ('fox', 2)]

    # Two iterations of 2 images, with 64-pixel crops instead of 224.
    output = run([
        *tool('train.py'), CLS_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
        f'data_root={data_root}', *one_epoch(), 'param_scheduler.1.begin=0',
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.1.scale=64',
        'val_dataloader.dataset.pipeline.1.scale=72',
        'val_dataloader.dataset.pipeline.2.crop_size=64'
    ], cwd=tmp_path)
    assert (f'data_root {data_root} (was data/my_images) set in: train_dataloader.dataset.'
            'data_root, val_dataloader.dataset.data_root, test_dataloader.dataset.data_root'
            in output)
    assert 'Epoch(train) [1][2/2]' in output
    assert 'Epoch(val) [1][2/2]    accuracy/top1:' in output


def build_classifier(cfg):
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_finetune_example_loads_the_backbone_of_a_classifier_checkpoint(tmp_path):
    torch.manual_seed(0)
    imagenet = build_classifier(Config.fromfile(os.path.join(REPO_ROOT, 'configs',
                                                             'dsnet_tiny_in1k.py')))
    checkpoint = str(tmp_path / 'dsnet_tiny_in1k.pth')
    torch.save({'state_dict': imagenet.state_dict()}, checkpoint)

    cfg = load_config(FINETUNE_CONFIG, {'model.backbone.init_cfg.checkpoint': checkpoint})
    model = build_classifier(cfg)
    for key, value in imagenet.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert model.head.fc.weight.shape == (3, 512)

    # A checkpoint of another arch is refused, naming what does not fit.
    cfg.model.backbone.arch = 'small'
    with pytest.raises(ValueError, match=r"prefix 'backbone\.'\) does not fit DSNet.*\n  missing"):
        build_classifier(cfg)

    # load_from (MMEngine's loading, not strict) takes the classifier's backbone and only warns
    # about the head, which keeps its initialisation.
    cfg = Config.fromfile(CLS_CONFIG)
    model = build_classifier(cfg)
    head = model.head.fc.weight.detach().clone()
    load_checkpoint(model, checkpoint)
    for key, value in imagenet.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert torch.equal(model.head.fc.weight, head)


def test_detection_example_sets_the_classes_of_every_dataset_and_head():
    cfg = Config.fromfile(DET_CONFIG)
    classes = cfg.metainfo.classes
    # the classes of the shapes set, in the order of its annotation files' categories
    assert classes == SHAPES_CLASSES
    for loader in DATALOADERS:
        assert cfg[loader].dataset.metainfo.classes == classes
    roi_head = cfg.model.roi_head
    assert roi_head.bbox_head.num_classes == roi_head.mask_head.num_classes == len(classes)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert cfg[evaluator].ann_file == 'data/my_coco/annotations/instances_val.json'


def test_detection_example_trains_on_a_coco_format_set(tmp_path):
    data_root = tmp_path / 'shapes'
    write_shapes_dataset(str(data_root), num_train=2, num_val=2, image_size=64)
    cfg = load_config(DET_CONFIG, {'data_root': str(data_root)})
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert tuple(dataset.metainfo['classes']) == SHAPES_CLASSES
    assert dataset.cat2label == {1: 0, 2: 1, 3: 2}

    # One iteration of 2 images at 96x64, the backbone from random weights.
    output = run([
        *tool('train.py'), DET_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
        f'data_root={data_root}', *one_epoch(), 'model.backbone.init_cfg=None',
        'train_dataloader.dataset.pipeline.2.scale=(96,64)',
        'val_dataloader.dataset.pipeline.1.scale=(96,64)'
    ], cwd=tmp_path)
    assert 'val_evaluator.ann_file, test_evaluator.ann_file' in output
    assert 'Epoch(train) [1][1/1]' in output
    assert 'Epoch(val) [1][2/2]    coco/bbox_mAP:' in output and 'coco/segm_mAP:' in output
