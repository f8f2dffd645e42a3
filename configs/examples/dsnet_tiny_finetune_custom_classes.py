# dsnet_tiny_custom_classes.py fine-tuned from ImageNet-1k weights: the backbone starts from a
# classifier checkpoint, the head (another number of classes) from random weights.
_base_ = ['./dsnet_tiny_custom_classes.py']

# PaddleClas' DSNet-tiny release, by URL, as in configs/mask_rcnn_dsnet_tiny_coco.py: the first
# run downloads it into torch's hub cache and every run converts it in memory. Offline, or to
# start from another file (a checkpoint of configs/dsnet_tiny_in1k.py, the authors' .pth, a
# downloaded .pdparams): --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/DSNet_tiny_pretrained.pdparams'  # noqa: E501

# Only the backbone's weights are loaded, strictly: a checkpoint of another arch is refused,
# naming the keys that do not fit. (`load_from` would load the whole classifier, and only warn
# about the head's other shape and anything else that does not fit.)
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))

# A shorter schedule than ImageNet's 300 epochs: a starting point, not tuned here. The
# warm-up (5 epochs) and the cosine decay to max_epochs are inherited.
train_cfg = dict(max_epochs=30)
