"""The ADE20K segmentation configs: they load, follow MMSegmentation's Swin-T UperNet and PVT's
Semantic FPN recipes, wire DSNet into the segmentor, train one step and predict."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet import model_index
from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPERNET_CONFIGS = ['upernet_dsnet_small_ade20k.py', 'upernet_dsnet_tiny_ade20k.py']
FPN_CONFIGS = ['fpn_dsnet_small_ade20k.py', 'fpn_dsnet_tiny_ade20k.py']
ADE_CONFIGS = UPERNET_CONFIGS + FPN_CONFIGS
CROP = 64  # the training steps' crop: the configs' 512 takes seconds a step on 2 cores


def load(name):
    return Config.fromfile(os.path.join(REPO_ROOT, 'configs', name))


def build_segmentor(cfg):
    """The config's segmentor with a randomly initialised backbone, its SyncBNs reverted to BN
    as MMEngine's Runner does in one process."""
    from mmseg.registry import MODELS
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (CROP, CROP)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model


def segmentation_batch(model, num_classes, training):
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(0)
    inputs, data_samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, CROP, CROP), dtype=torch.uint8,
                                    generator=generator))
        labels = torch.randint(0, num_classes, (1, CROP, CROP), generator=generator)
        labels[:, :4] = 255  # the ignore index, as reduce_zero_label makes of ADE's 0
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels))
        sample.set_metainfo(dict(img_shape=(CROP, CROP), ori_shape=(CROP, CROP),
                                 pad_shape=(CROP, CROP)))
        data_samples.append(sample)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=data_samples), training)


@pytest.mark.parametrize('name', ADE_CONFIGS)
def test_config_wires_dsnet_into_the_segmentor(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert 'mmdsnet' in cfg.custom_imports.imports and not cfg.custom_imports.allow_failed_imports
    backbone = cfg.model.backbone
    assert backbone.type == 'DSNet' and backbone.out_indices == (0, 1, 2, 3)
    channels = [DSNet.arch_zoo[backbone.arch]['embed_dims'][i] for i in backbone.out_indices]
    if name in UPERNET_CONFIGS:
        assert cfg.model.decode_head.type == 'UPerHead'
        assert cfg.model.decode_head.in_channels == channels
        # The auxiliary FCN head reads stage 3, as MMSegmentation's Swin and ConvNeXt UperNets.
        assert cfg.model.auxiliary_head.in_index == 2
        assert cfg.model.auxiliary_head.in_channels == channels[2]
    else:
        assert cfg.model.neck.type == 'FPN' and cfg.model.neck.in_channels == channels
        assert cfg.model.decode_head.type == 'FPNHead'
        assert cfg.model.pretrained is None  # fpn_r50.py's ResNet weights are not loaded
    assert backbone.out_norm_cfg == dict(type='mmpretrain.LN2d')
    assert cfg.model.decode_head.num_classes == 150


@pytest.mark.parametrize('name', ADE_CONFIGS)
def test_ade20k_config_recipe(name):
    cfg = load(name)
    backbone = cfg.model.backbone
    release = model_index.load_metafile(model_index.CLASSIFICATION_METAFILE)['Models']
    url = next(model['Weights'] for model in release
               if model['Name'] == f'dsnet-{backbone.arch}_3rdparty_in1k')
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=url, prefix='backbone.')
    # As in the COCO configs: no attention dropout, a linear drop-path ramp, frozen BN statistics.
    assert backbone.attn_drop_rate == 0. and backbone.drop_path_schedule == 'linear'
    assert backbone.norm_eval and backbone.drop_path_rate == {'small': 0.2, 'tiny': 0.1}[
        backbone.arch]
    # 8 GPUs x 2 images of 512 x 512 crops; ADE20K's layout and 150-class dataset.
    assert cfg.train_dataloader.batch_size == 2 and cfg.crop_size == (512, 512)
    assert cfg.model.data_preprocessor.size == (512, 512)
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'CheckedADE20KDataset'
    assert dataset.data_root == 'data/ade/ADEChallengeData2016'
    assert dataset.data_prefix == dict(img_path='images/training',
                                       seg_map_path='annotations/training')
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'images/validation'
    assert (cfg.test_evaluator.type, cfg.test_evaluator.iou_metrics) == ('IoUMetric', ['mIoU'])
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    if name in UPERNET_CONFIGS:  # MMSegmentation's Swin-T UperNet
        assert (optimizer.lr, optimizer.weight_decay) == (6e-5, 0.01)
        warmup, poly = cfg.param_scheduler
        assert (warmup.type, warmup.end, poly.type, poly.power) == ('LinearLR', 1500, 'PolyLR', 1.)
        iterations = 160000
    else:  # PVT's Semantic FPN
        assert (optimizer.lr, optimizer.weight_decay) == (1e-4, 1e-4)
        (poly, ) = cfg.param_scheduler
        assert (poly.type, poly.power, poly.begin) == ('PolyLR', 0.9, 0)
        iterations = 80000
    assert poly.end == cfg.train_cfg.max_iters == iterations
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'


@pytest.mark.parametrize('name', ADE_CONFIGS)
def test_one_training_step_gives_finite_losses_and_trains_every_parameter(name):
    # Each trainable parameter must get a gradient: DDP (find_unused_parameters=False) fails
    # on one that does not.
    model = build_segmentor(load(name)).train()
    losses = model(**segmentation_batch(model, 150, training=True), mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    assert 'decode.loss_ce' in losses
    assert ('aux.loss_ce' in losses) == (name in UPERNET_CONFIGS)
    loss.backward()
    no_grad = [key for key, param in model.named_parameters()
               if param.requires_grad and param.grad is None]
    assert no_grad == []
    assert all(torch.isfinite(param.grad).all() for param in model.parameters()
               if param.grad is not None)


@pytest.mark.parametrize('name', ['upernet_dsnet_tiny_ade20k.py', 'fpn_dsnet_tiny_ade20k.py'])
def test_segmentor_predicts_a_label_per_pixel_of_the_original_image(name):
    model = build_segmentor(load(name)).eval()
    data = segmentation_batch(model, 150, training=False)
    for sample in data['data_samples']:  # as if resized from a 50 x 70 original
        sample.set_metainfo(dict(ori_shape=(50, 70)))
    with torch.no_grad():
        results = model(**data, mode='predict')
    for result in results:
        assert result.seg_logits.data.shape == (150, 50, 70)
        labels = result.pred_sem_seg.data
        assert labels.shape == (1, 50, 70)
        assert ((labels >= 0) & (labels < 150)).all()


def test_the_optimizer_skips_decay_on_norms_biases_and_position_encodings():
    from mmengine.optim import build_optim_wrapper
    cfg = load('upernet_dsnet_tiny_ade20k.py')
    model = build_segmentor(cfg)
    decay_of = {}
    for group in build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups:
        for param in group['params']:
            decay_of[param] = group['weight_decay']
    named = dict(model.named_parameters())
    block = 'backbone.stages.0.blocks.0.'
    no_decay = [block + 'position_encoding.weight', block + 'norm.weight',
                'backbone.out_norms.0.weight', 'decode_head.conv_seg.bias']
    decay = [block + 'input_proj.weight', 'decode_head.conv_seg.weight']
    assert {key: decay_of[named[key]] for key in no_decay} == dict.fromkeys(no_decay, 0.)
    assert {key: decay_of[named[key]] for key in decay} == dict.fromkeys(decay, 0.01)
