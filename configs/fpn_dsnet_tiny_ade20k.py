# Semantic FPN with an ImageNet-1k DSNet-tiny backbone on ADE20K, 80k iterations.
_base_ = './fpn_dsnet_small_ade20k.py'

# PaddleClas' DSNet-tiny release; see upernet_dsnet_small_ade20k.py for the download.
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_tiny_pretrained.pdparams'  # noqa: E501

model = dict(backbone=dict(arch='tiny', drop_path_rate=0.1, init_cfg=dict(checkpoint=pretrained)))
