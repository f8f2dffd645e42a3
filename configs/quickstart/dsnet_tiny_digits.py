# DSNet-tiny trained from scratch on scikit-learn's handwritten digits (mmdsnet.datasets.digits,
# written by tools/quickstart.py): 1,437 training and 360 held-out 32x32 images, on a CPU in
# minutes. The ImageNet-1k recipe with what a 10-class, 32-pixel problem needs changed.
_base_ = ['../dsnet_tiny_in1k.py']

data_root = 'data/digits'
classes = [str(digit) for digit in range(10)]

# No Mixup/CutMix or drop path: they regularise long ImageNet runs and slow short ones down.
model = dict(backbone=dict(drop_path_rate=0.), head=dict(num_classes=10), train_cfg=None)
data_preprocessor = dict(num_classes=10)

# No flip or RandAugment: a mirrored or sheared digit can be another digit.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler'))
val_dataloader = dict(
    batch_size=120,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1),
]
train_cfg = dict(max_epochs=10, val_interval=2)

randomness = dict(seed=0)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=10, max_keep_ckpts=1, save_best=None))
