"""The ImageNet-1k configs: the recipe of issue 4 as resolved from dsnet_small_in1k.py, and each
config training two iterations and validating on CPU.

The runs read the embedded digits folder, which has ImageNet's layout, through the configs'
own ImageNet dataset and pipelines; only the data root, subset sizes, crop size and batch size
are overridden, through :func:`mmdsnet.launch.load_config` as ``--cfg-options`` does."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.datasets import write_digits
from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN1K_CONFIGS = ['dsnet_tiny_in1k.py', 'dsnet_small_in1k.py', 'dsnet_base_in1k.py']


def load(name):
    return Config.fromfile(os.path.join(REPO_ROOT, 'configs', name))


def test_small_in1k_recipe():
    cfg = load('dsnet_small_in1k.py')
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(imports=['mmdsnet'], allow_failed_imports=False)

    model = cfg.model
    assert model.type == 'ImageClassifier'
    assert (model.backbone.type, model.backbone.arch) == ('DSNet', 'small')
    assert model.backbone.drop_path_rate == 0.1
    # The releases' attention dropout (DSNet's default) is kept for ImageNet training.
    assert model.backbone.get('attn_drop_rate', 0.1) == 0.1
    assert model.neck.type == 'GlobalAveragePooling'
    assert model.head.type == 'LinearClsHead'
    assert (model.head.in_channels, model.head.num_classes) == (512, 1000)
    assert model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert model.train_cfg.augments == [dict(type='Mixup', alpha=0.8),
                                        dict(type='CutMix', alpha=1.0)]
    assert cfg.data_preprocessor.num_classes == 1000

    train = cfg.train_dataloader
    assert train.batch_size == 128  # x 8 GPUs = 1024
    assert train.sampler.type == 'RepeatAugSampler'
    assert (train.dataset.type, train.dataset.data_root, train.dataset.split) == (
        'ImageNet', 'data/imagenet', 'train')
    steps = {step.type: step for step in train.dataset.pipeline}
    assert list(steps) == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
                           'RandomErasing', 'PackInputs']
    assert steps['RandomResizedCrop'] == dict(type='RandomResizedCrop', scale=224,
                                              backend='pillow', interpolation='bicubic')
    assert (steps['RandomFlip'].prob, steps['RandomFlip'].direction) == (0.5, 'horizontal')
    rand_augment = steps['RandAugment']
    assert (rand_augment.policies, rand_augment.num_policies, rand_augment.total_level,
            rand_augment.magnitude_level, rand_augment.magnitude_std) == ('timm_increasing', 2,
                                                                          10, 9, 0.5)
    assert rand_augment.hparams == dict(pad_val=[104, 116, 124], interpolation='bicubic')
    erasing = steps['RandomErasing']
    assert (erasing.erase_prob, erasing.mode, erasing.min_area_ratio,
            erasing.max_area_ratio) == (0.25, 'rand', 0.02, 1 / 3)

    val = cfg.val_dataloader
    assert val.dataset.split == 'val'
    assert [step.type for step in val.dataset.pipeline] == [
        'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs']
    resize, crop = val.dataset.pipeline[1:3]
    assert (resize.scale, resize.edge, resize.interpolation) == (256, 'short', 'bicubic')
    assert crop.crop_size == 224
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    assert cfg.test_dataloader == val and cfg.test_evaluator == cfg.val_evaluator

    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay, optimizer.betas) == (
        'AdamW', 1e-3, 0.05, (0.9, 0.999))
    assert cfg.auto_scale_lr == dict(base_batch_size=1024)
    assert cfg.optim_wrapper.paramwise_cfg == dict(norm_decay_mult=0., bias_decay_mult=0.,
                                                   flat_decay_mult=0.)
    warmup, cosine = cfg.param_scheduler
    assert warmup == dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5,
                          convert_to_iter_based=True)
    assert cosine == dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
    assert (cfg.train_cfg.by_epoch, cfg.train_cfg.max_epochs) == (True, 300)


def test_small_in1k_decays_only_weight_matrices_and_kernels():
    cfg = load('dsnet_small_in1k.py')
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(param): group['weight_decay'] for group in optim_wrapper.param_groups
             for param in group['params']}
    for name, param in model.named_parameters():
        assert decay[id(param)] == (0.05 if param.ndim > 1 else 0.), name


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    return write_digits(str(tmp_path_factory.mktemp('data') / 'digits'))


def tiny_run_options(data_root):
    """One epoch of 4 training images in batches of 2, 2 val images; 64-pixel crops instead of
    224; no checkpoint (the tools' tests write them)."""
    options = {
        'data_root': data_root,
        'train_cfg.max_epochs': 1,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint': None,
    }
    for loader, num_images in (('train_dataloader', 4), ('val_dataloader', 2)):
        options.update({
            f'{loader}.batch_size': 2,
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
            f'{loader}.dataset.indices': num_images,
        })
    options.update({
        'train_dataloader.dataset.pipeline.1.scale': 64,
        'val_dataloader.dataset.pipeline.1.scale': 72,
        'val_dataloader.dataset.pipeline.2.crop_size': 64,
    })
    return options


@pytest.mark.parametrize('name', IN1K_CONFIGS)
def test_in1k_config_trains_and_validates(name, digits_root, tmp_path):
    from mmpretrain.datasets import RepeatAugSampler
    cfg = load_config(os.path.join(REPO_ROOT, 'configs', name), tiny_run_options(digits_root),
                      work_dir=str(tmp_path))
    cfg.param_scheduler = [dict(cfg.param_scheduler[0], end=1)]  # the warm-up, over the epoch
    runner = Runner.from_cfg(cfg)
    assert isinstance(runner.train_dataloader.sampler, RepeatAugSampler)
    assert [type(augment).__name__ for augment in
            runner.model.data_preprocessor.batch_augments.augments] == ['Mixup', 'CutMix']
    params_before = [param.detach().clone() for param in runner.model.parameters()]

    runner.train()

    assert runner.iter == 2
    assert any(not torch.equal(before, after.detach())
               for before, after in zip(params_before, runner.model.parameters()))
    for metric in ('accuracy/top1', 'accuracy/top5'):
        assert 0 <= runner.message_hub.get_scalar(f'val/{metric}').current() <= 100
