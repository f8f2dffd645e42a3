# Semantic FPN + DSNet-tiny trained from scratch on the generated shapes set in ADE20K's layout
# (mmdsnet.datasets.shapes, written by tools/make_shapes_dataset.py --semantic): 1,000 training
# and 100 validation 128x128 images of circles, triangles and rectangles on a background;
# 800 iterations of 8 images (6.4 epochs), about 10 minutes on 2 shared CPU cores with
# OMP_NUM_THREADS=1, then mIoU / mAcc / aAcc on the validation images (mIoU ~49%, chance 25%;
# docs/benchmarks/cpu/quickstart_seg.json). The ADE20K config scaled down to what a 4-class,
# 128-pixel problem needs.
_base_ = '../fpn_dsnet_tiny_ade20k.py'

data_root = 'data/shapes_ade/'
# Label 0 is unlabelled in ADE20K's convention (reduce_zero_label), 1-4 are these classes.
metainfo = dict(
    classes=('background', 'circle', 'triangle', 'rectangle'),
    palette=[[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]])
crop_size = (128, 128)
channels = 64  # FPN width, 256 on ADE20K

model = dict(
    data_preprocessor=dict(size=crop_size),
    # From scratch with 8 images per batch: no checkpoint, and BatchNorm statistics are learnt.
    backbone=dict(drop_path_rate=0., norm_eval=False, init_cfg=None),
    neck=dict(out_channels=channels),
    decode_head=dict(in_channels=[channels] * 4, channels=channels, num_classes=4))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's
    dict(type='PackSegInputs')
]
dataset = dict(
    type='CheckedSegDataset', data_root=data_root, metainfo=metainfo, reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(dataset, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=10,
    num_workers=1,
    dataset=dict(dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0., power=0.9, begin=50, end=max_iters, by_epoch=False)
]

randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=25), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
