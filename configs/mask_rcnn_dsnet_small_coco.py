# Mask R-CNN + FPN with an ImageNet-1k DSNet-small backbone on COCO 2017 instances: 1x schedule
# (12 epochs, 8 GPUs x 2 images, AdamW), single scale 1333x800. Evaluation: COCO bbox and segm
# mAP on val2017; docs/detection.md has the test-dev (format-only) switch.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '_base_/schedules/coco_adamw_1x_dsnet.py',
    'mmdet::_base_/default_runtime.py',
    '_base_/mmdsnet_runtime.py',
]

# ImageNet-1k weights: PaddleClas' DSNet-small release (configs/metafile.yml), by URL, as
# MMDetection's Swin configs start from Swin's release. The first run downloads it into torch's
# hub cache ($TORCH_HOME/hub/checkpoints/, by default ~/.cache/torch/hub/checkpoints/) and every
# run converts it in memory (mmdsnet.models.backbones.dsnet_weights.load_from_url). Offline, or
# to start from another file (a checkpoint of configs/dsnet_small_in1k.py, the authors' .pth, a
# downloaded .pdparams): --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_small_pretrained.pdparams'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='DSNet',
        arch='small',
        out_indices=(0, 1, 2, 3),
        # Two settings differ from the classification releases (docs/detection.md):
        # - drop path rises linearly over all blocks to 0.2, as in mmdet's Swin-T config (the
        #   releases restart the ramp in every stage, so no block would get more than 0.082);
        # - no dropout on the attention weights (the releases hard-code 0.1; mmdet's Swin and
        #   PVT configs fine-tune with 0), which also keeps CPU attention in fused kernels.
        drop_path_rate=0.2,
        drop_path_schedule='linear',
        attn_drop_rate=0.,
        # Batch statistics of 2 images are too noisy for DSNet's BatchNorms: their ImageNet
        # statistics are kept (affine parameters still train). The per-output norms are new, so
        # they are LayerNorms, which have no statistics to freeze. No stage is frozen: as for
        # Swin and PVT, every stage is fine-tuned.
        norm_eval=True,
        frozen_stages=-1,
        out_norm_cfg=dict(type='mmpretrain.LN2d'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]))

# COCO that reports annotation faults (unknown categories, unusable polygons) instead of passing
# them silently, and logs what it skips: mmdsnet.datasets.CheckedCocoDataset.
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
