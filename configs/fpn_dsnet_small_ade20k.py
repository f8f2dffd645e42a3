# Semantic FPN with an ImageNet-1k DSNet-small backbone on ADE20K (150 classes): 80k iterations,
# 8 GPUs x 2 images, 512x512 crops, AdamW (lr 1e-4, weight decay 1e-4) with a poly decay (power
# 0.9), as PVT's and Twins' Semantic FPN configs. Evaluation as upernet_dsnet_small_ade20k.py.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    'mmseg::_base_/default_runtime.py',
    '_base_/mmdsnet_runtime.py',
]

# PaddleClas' DSNet-small release; see upernet_dsnet_small_ade20k.py for the download.
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_small_pretrained.pdparams'  # noqa: E501
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    # The backbone settings of upernet_dsnet_small_ade20k.py (the reasons are given there).
    backbone=dict(
        _delete_=True,
        type='DSNet',
        arch='small',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        drop_path_schedule='linear',
        attn_drop_rate=0.,
        norm_eval=True,
        out_norm_cfg=dict(type='mmpretrain.LN2d'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]),
    decode_head=dict(num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={'position_encoding': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0., power=0.9, begin=0, end=80000, by_epoch=False)
]

# CheckedADE20KDataset: mmdsnet.datasets.checked_ade20k (needs MMSegmentation, so imported here).
custom_imports = dict(
    imports=['mmdsnet', 'mmdsnet.datasets.checked_ade20k'], allow_failed_imports=False)
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedADE20KDataset'))
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedADE20KDataset'))
test_dataloader = val_dataloader
