# DSNet classifier with the ImageNet-1k head; the top-level configs pick the arch.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='DSNet', arch='tiny', drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)),
    # Mixup and CutMix: one of the two per batch, each with probability 0.5.
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
