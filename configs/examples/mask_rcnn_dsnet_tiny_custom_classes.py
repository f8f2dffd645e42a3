# Mask R-CNN + DSNet-tiny (configs/mask_rcnn_dsnet_tiny_coco.py: ImageNet-1k backbone, the COCO
# 1x recipe) on your own COCO-format instance segmentation set. To use it, change:
# - data_root, or pass --cfg-options data_root=DIR;
# - the annotation files and image folders below, relative to data_root;
# - classes. The ones here are those of the generated shapes set, so that this config runs as it
#   is after `python tools/make_shapes_dataset.py` with --cfg-options data_root=data/shapes/.
# For RetinaNet (configs/retinanet_dsnet_small_coco.py) the same, with
# model = dict(bbox_head=dict(num_classes=num_classes)).
_base_ = '../mask_rcnn_dsnet_tiny_coco.py'

data_root = 'data/my_coco/'
# Names of categories in your annotation files, in the order of their "categories" list: label i
# is the i-th of the file's categories whose name is listed. Categories left out are ignored,
# and so is a listed name that the file lacks.
metainfo = dict(classes=('circle', 'triangle', 'rectangle'))
num_classes = len(metainfo['classes'])

model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=num_classes), mask_head=dict(num_classes=num_classes)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
