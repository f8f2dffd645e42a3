# Mask R-CNN + FPN with an ImageNet-1k DSNet-tiny backbone on COCO 2017 instances, 1x schedule.
_base_ = './mask_rcnn_dsnet_small_coco.py'

# PaddleClas' DSNet-tiny release; see mask_rcnn_dsnet_small_coco.py for the download.
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_tiny_pretrained.pdparams'  # noqa: E501

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint=pretrained)))
