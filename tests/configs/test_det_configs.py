"""The detection configs: they load, build, train one step and predict, with the settings issue 5
asks for (schedule, optimizer groups, backbone wiring, checkpoint loading)."""
import os

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet import model_index
from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COCO_CONFIGS = [
    'mask_rcnn_dsnet_small_coco.py',
    'mask_rcnn_dsnet_tiny_coco.py',
    'mask_rcnn_dsnet_small_ms-3x_coco.py',
    'retinanet_dsnet_small_coco.py',
]
SHAPES_CONFIG = 'quickstart/mask_rcnn_dsnet_tiny_shapes.py'
ALL_CONFIGS = COCO_CONFIGS + [SHAPES_CONFIG]


def load(name):
    return Config.fromfile(os.path.join(REPO_ROOT, 'configs', name))


def build_detector(cfg, pretrained=None):
    """The config's model; without ``pretrained`` the backbone starts from random weights."""
    from mmdet.registry import MODELS
    init_default_scope(cfg.default_scope)
    if cfg.model.backbone.init_cfg is not None:
        cfg.model.backbone.init_cfg = None if pretrained is None else dict(
            cfg.model.backbone.init_cfg, checkpoint=pretrained)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def detection_batch(model, num_classes, training):
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=2, image_shapes=(3, 128, 160), num_items=[3, 2],
                          num_classes=num_classes, with_mask=True)
    return model.data_preprocessor(data, training)


@pytest.mark.parametrize('name', COCO_CONFIGS)
def test_coco_configs_fine_tune_like_mmdet_transformer_backbones(name):
    backbone = load(name).model.backbone
    # No attention dropout (the releases' 0.1) and a drop-path ramp over the whole depth,
    # as in mmdet's Swin-T config.
    assert backbone.attn_drop_rate == 0.
    assert backbone.drop_path_schedule == 'linear'
    model = DSNet(**{key: value for key, value in backbone.items() if key != 'type'})
    blocks = [block for stage in model.stages for block in stage.blocks]
    assert isinstance(blocks[0].drop_path, torch.nn.Identity)  # rate 0
    assert blocks[-1].drop_path.drop_prob == pytest.approx(backbone.drop_path_rate)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_detection_configs_leave_cudnn_benchmark_off(name):
    # The RoI heads see new shapes every step, and cuDNN would time its algorithms again for
    # each: a Mask R-CNN step took 3.5x as long on an H200 (docs/benchmarks.md, run 3).
    assert load(name).env_cfg.cudnn_benchmark is False


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_wires_dsnet_into_the_detector(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmdsnet'], allow_failed_imports=False)
    backbone = cfg.model.backbone
    assert backbone.type == 'DSNet'
    channels = [DSNet.arch_zoo[backbone.arch]['embed_dims'][i] for i in backbone.out_indices]
    assert cfg.model.neck.in_channels == channels
    assert backbone.out_norm_cfg == dict(type='mmpretrain.LN2d')
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'


@pytest.mark.parametrize('name', COCO_CONFIGS)
def test_coco_config_recipe(name):
    cfg = load(name)
    backbone = cfg.model.backbone
    # PaddleClas' release of the arch, by URL (downloaded on the first run), as the metafile has
    release = model_index.load_metafile(model_index.CLASSIFICATION_METAFILE)['Models']
    url = next(model['Weights'] for model in release
               if model['Name'] == f'dsnet-{backbone.arch}_3rdparty_in1k')
    assert url == ('https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/'
                   f'DSNet_{backbone.arch}_pretrained.pdparams')
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=url, prefix='backbone.')
    assert cfg.pretrained == backbone.init_cfg.checkpoint
    assert backbone.norm_eval and backbone.frozen_stages == -1
    assert 0.1 <= backbone.drop_path_rate <= 0.2
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.lr, optimizer.weight_decay) == (1e-4, 0.05)
    assert cfg.auto_scale_lr.base_batch_size == 16 and cfg.train_dataloader.batch_size == 2
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and not warmup.by_epoch
    assert (warmup.start_factor, warmup.end) == (1e-3, 500)
    expected = ([27, 33], 36) if 'ms-3x' in name else ([8, 11], 12)
    assert (steps.milestones, cfg.train_cfg.max_epochs) == expected
    assert steps.type == 'MultiStepLR' and steps.end == expected[1]
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.train_dataloader.dataset.ann_file == 'annotations/instances_train2017.json'
    assert cfg.test_evaluator.type == 'CocoMetric'
    assert cfg.test_evaluator.metric == ('bbox' if 'retinanet' in name else ['bbox', 'segm'])
    # (the `_scope_` that mmdet:: bases add aside)
    resizes = [{key: value for key, value in transform.items() if key != '_scope_'}
               for transform in cfg.train_pipeline if 'Resize' in transform.type]
    if 'ms-3x' in name:
        assert resizes == [dict(type='RandomResize', scale=[(1333, 480), (1333, 800)],
                                keep_ratio=True)]
    else:
        assert resizes == [dict(type='Resize', scale=(1333, 800), keep_ratio=True)]


def test_ms_3x_config_trains_the_1x_model():
    assert load('mask_rcnn_dsnet_small_ms-3x_coco.py').model == load(
        'mask_rcnn_dsnet_small_coco.py').model


def test_long_shapes_config_stretches_the_schedule_only():
    short, long = load(SHAPES_CONFIG), load('quickstart/mask_rcnn_dsnet_tiny_shapes_8e.py')
    assert long.model == short.model and long.train_dataloader == short.train_dataloader
    assert (short.train_cfg.max_epochs, long.train_cfg.max_epochs) == (2, 8)
    assert [scheduler.end for scheduler in long.param_scheduler] == [100, 8]
    assert long.train_cfg.val_interval == long.default_hooks.checkpoint.interval == 8


@pytest.mark.parametrize('name', [name for name in ALL_CONFIGS if 'ms-3x' not in name])
def test_one_training_step_gives_finite_losses_and_trains_every_parameter(name):
    # Each trainable parameter must get a gradient: DDP (find_unused_parameters=False) fails
    # on one that does not, e.g. an output norm on a stage the neck ignores.
    cfg = load(name)
    model = build_detector(cfg).train()
    data = detection_batch(model, num_classes=3, training=True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    assert any(key.endswith('cls') for key in losses) and any('bbox' in key for key in losses)
    assert ('loss_mask' in losses) == ('mask_rcnn' in name)
    loss.backward()
    no_grad = [name for name, param in model.named_parameters()
               if param.requires_grad and param.grad is None]
    assert no_grad == []
    assert all(torch.isfinite(param.grad).all() for param in model.parameters()
               if param.grad is not None)


def test_mask_rcnn_tiny_predicts_boxes_labels_and_masks():
    cfg = load('mask_rcnn_dsnet_tiny_coco.py')
    cfg.model.test_cfg.rcnn.update(score_thr=0., max_per_img=10)  # random scores are ~1 / 81
    model = build_detector(cfg).eval()
    data = detection_batch(model, num_classes=80, training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        height, width = result.ori_shape
        assert len(pred) > 0
        assert pred.bboxes.shape == (len(pred), 4) and pred.labels.shape == (len(pred), )
        assert pred.masks.shape == (len(pred), height, width) and pred.masks.dtype == torch.bool
        assert ((pred.labels >= 0) & (pred.labels < 80)).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()


def test_optimizer_groups_skip_decay_on_norms_biases_and_position_encodings():
    cfg = load('mask_rcnn_dsnet_tiny_coco.py')
    model = build_detector(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay_of = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            decay_of[param] = group['weight_decay']
    named = dict(model.named_parameters())
    block = 'backbone.stages.0.blocks.0.'
    no_decay = [
        block + 'position_encoding.weight', block + 'position_encoding.bias',
        block + 'norm.weight', block + 'global_stream.norm.weight',
        block + 'global_stream.qkv.bias', 'backbone.out_norms.0.weight',
        'backbone.final_norm.bias', 'neck.fpn_convs.0.conv.bias'
    ]
    decay = [block + 'input_proj.weight', block + 'global_stream.qkv.weight',
             'neck.fpn_convs.0.conv.weight', 'roi_head.bbox_head.fc_cls.weight']
    assert {key: decay_of[named[key]] for key in no_decay} == dict.fromkeys(no_decay, 0.)
    assert {key: decay_of[named[key]] for key in decay} == dict.fromkeys(decay, 0.05)


def save_classifier_checkpoint(path, arch):
    """A classification checkpoint: ``backbone.`` and ``head.`` keys, as a checkpoint of
    ``dsnet_*_in1k.py`` or the release converter has. Returns the backbone's state dict."""
    torch.manual_seed(1)
    backbone = DSNet(arch)
    for module in backbone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_()
    state_dict = {f'backbone.{key}': value for key, value in backbone.state_dict().items()}
    state_dict['head.fc.weight'] = torch.zeros(1000, 512)
    torch.save(dict(state_dict=state_dict, meta=dict()), path)
    return backbone.state_dict()


def test_pretrained_init_cfg_loads_every_backbone_weight(tmp_path):
    """Every backbone tensor comes from the checkpoint but the new output norms."""
    checkpoint = tmp_path / 'dsnet_tiny_in1k.pth'
    expected = save_classifier_checkpoint(checkpoint, 'tiny')
    model = build_detector(load('mask_rcnn_dsnet_tiny_coco.py'), pretrained=str(checkpoint))

    loaded = model.backbone.state_dict()
    assert {key for key in loaded if not key.startswith('out_norms.')} == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    for norm in model.backbone.out_norms:
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))


def test_pretrained_init_cfg_refuses_another_arch(tmp_path):
    checkpoint = tmp_path / 'dsnet_small_in1k.pth'
    save_classifier_checkpoint(checkpoint, 'small')
    with pytest.raises(ValueError, match='does not fit'):
        build_detector(load('mask_rcnn_dsnet_tiny_coco.py'), pretrained=str(checkpoint))
