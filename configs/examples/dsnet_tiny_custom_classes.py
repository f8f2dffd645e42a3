# DSNet-tiny for your own classes, trained from scratch with the ImageNet-1k recipe of
# configs/dsnet_tiny_in1k.py; dsnet_tiny_finetune_custom_classes.py starts from ImageNet weights
# instead. docs/your_data.md has the folder layouts. To use it, change:
# - data_root, or pass --cfg-options data_root=DIR;
# - classes: your class names (the head and the Mixup/CutMix labels follow their number);
# - the schedule, for your data (inherited: 300 epochs, lr 1e-3 for a total batch of 1024).
_base_ = ['../dsnet_tiny_in1k.py']

data_root = 'data/my_images'
# With the folder layout (train/<class>/*.jpg, val/<class>/*.jpg, no meta/ files), label i is
# the i-th class folder in sorted order, so list the folder names sorted; there must be as many
# folders as classes. With meta/train.txt and meta/val.txt ("<image path> <label>" lines),
# classes[i] names label i.
classes = ['cat', 'dog', 'fox']
num_classes = len(classes)

model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)  # the one-hot labels of Mixup and CutMix

train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader

# Top-5 accuracy needs at least 5 classes.
val_evaluator = dict(topk=(1, 5) if num_classes >= 5 else (1, ))
test_evaluator = val_evaluator
