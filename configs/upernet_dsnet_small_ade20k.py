# UperNet + auxiliary FCN head with an ImageNet-1k DSNet-small backbone on ADE20K (150 classes):
# 160k iterations, 8 GPUs x 2 images, 512x512 crops, AdamW with a linear warm-up and a poly decay,
# as MMSegmentation's Swin-T UperNet config. Evaluation: mIoU / mAcc / aAcc on the 2,000
# validation images (single scale, short side 512). docs/segmentation.md has the details.
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    'mmseg::_base_/default_runtime.py',
    '_base_/mmdsnet_runtime.py',
]

# ImageNet-1k weights: PaddleClas' DSNet-small release by URL, fetched once into torch's hub
# cache and converted in memory, as in configs/mask_rcnn_dsnet_small_coco.py. Offline, or to
# start from another file: --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_small_pretrained.pdparams'  # noqa: E501
crop_size = (512, 512)
num_classes = 150

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='DSNet',
        arch='small',
        out_indices=(0, 1, 2, 3),
        # As in the COCO configs (docs/detection.md): drop path rising linearly over all blocks
        # (to 0.2 here; MMSegmentation's Swin-T uses 0.3 for its 12 blocks, DSNet-S has 18), no
        # dropout on the attention weights, and the BatchNorms keep their ImageNet statistics
        # (2 images per GPU); the per-output LayerNorms are new.
        drop_path_rate=0.2,
        drop_path_schedule='linear',
        attn_drop_rate=0.,
        norm_eval=True,
        out_norm_cfg=dict(type='mmpretrain.LN2d'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=num_classes),
    auxiliary_head=dict(in_channels=320, num_classes=num_classes))

# MMSegmentation's Swin-T UperNet optimiser and schedule; no weight decay on norms, biases and
# DSNet's conditional position encodings (as in the COCO configs).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={'position_encoding': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0., power=1.0, begin=1500, end=160000, by_epoch=False),
]

# ADE images that fail the checks (a missing or mis-sized annotation, labels out of range) are
# named or counted instead of crashing a data worker: mmdsnet.datasets.CheckedADE20KDataset.
# CheckedADE20KDataset: mmdsnet.datasets.checked_ade20k (needs MMSegmentation, so imported here).
custom_imports = dict(
    imports=['mmdsnet', 'mmdsnet.datasets.checked_ade20k'], allow_failed_imports=False)
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedADE20KDataset'))
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedADE20KDataset'))
test_dataloader = val_dataloader
