# The longer shapes run: 8 epochs instead of 2, about 20 minutes on 2 CPU cores, for bbox and
# segm mAP 0.71 / 0.72 (docs/detection.md has the measurement).
_base_ = './mask_rcnn_dsnet_tiny_shapes.py'

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
