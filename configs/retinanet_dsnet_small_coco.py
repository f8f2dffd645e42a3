# RetinaNet + FPN with an ImageNet-1k DSNet-small backbone on COCO 2017, 1x schedule (12 epochs,
# 8 GPUs x 2 images, AdamW), single scale 1333x800; COCO bbox mAP on val2017.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '_base_/schedules/coco_adamw_1x_dsnet.py',
    'mmdet::_base_/default_runtime.py',
    '_base_/mmdsnet_runtime.py',
]

# See mask_rcnn_dsnet_small_coco.py for the checkpoint and the norm settings.
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_small_pretrained.pdparams'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='DSNet',
        arch='small',
        # RetinaNet's FPN starts at stride 8. Returning the stride-4 map too would leave its
        # output norm without gradients, which DDP rejects.
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        drop_path_schedule='linear',
        attn_drop_rate=0.,
        norm_eval=True,
        frozen_stages=-1,
        out_norm_cfg=dict(type='mmpretrain.LN2d'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[128, 320, 512], start_level=0, num_outs=5))

# COCO that reports annotation faults (unknown categories, unusable polygons) instead of passing
# them silently, and logs what it skips: mmdsnet.datasets.CheckedCocoDataset.
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
