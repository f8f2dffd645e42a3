# Mask R-CNN + FPN with an ImageNet-1k DSNet-tiny backbone on COCO 2017 instances, 1x schedule.
_base_ = './mask_rcnn_dsnet_small_coco.py'

pretrained = 'checkpoints/dsnet_tiny_in1k.pth'

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint=pretrained)))
