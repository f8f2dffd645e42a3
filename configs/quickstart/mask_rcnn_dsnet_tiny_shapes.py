# Mask R-CNN + DSNet-tiny trained from scratch on the generated shapes set
# (mmdsnet.datasets.shapes, written by tools/make_shapes_dataset.py): 1,000 training and 100 val
# 128x128 images of circles, triangles and rectangles; 2 epochs, about 5 minutes on 2 CPU cores,
# then COCO bbox and segm mAP (~0.17 / 0.25; mask_rcnn_dsnet_tiny_shapes_8e.py: 0.71 / 0.72).
# The COCO config scaled down to what a 3-class, 128-pixel problem needs.
_base_ = '../mask_rcnn_dsnet_tiny_coco.py'

data_root = 'data/shapes/'
metainfo = dict(classes=('circle', 'triangle', 'rectangle'))  # the category names in the json
image_size = (128, 128)
channels = 64  # FPN and head width, 256 on COCO

model = dict(
    # From scratch with 8 images per batch: no checkpoint, and BatchNorm statistics are learnt.
    # Trained from scratch like the classification releases, it keeps their attention dropout
    # (0.1; the COCO configs fine-tune without it); the figures in docs/detection.md used it.
    backbone=dict(drop_path_rate=0., attn_drop_rate=0.1, norm_eval=False, init_cfg=None),
    neck=dict(out_channels=channels),
    # Anchors of 16-256 pixels (32-512 on COCO) for objects of 19-58 pixels.
    rpn_head=dict(
        in_channels=channels, feat_channels=channels, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2, in_channels=channels, conv_out_channels=channels, num_classes=3)),
    # At most 4 objects per image: far fewer proposals and sampled RoIs than on COCO.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=10,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs)
]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
auto_scale_lr = dict(base_batch_size=8)

randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=25), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
