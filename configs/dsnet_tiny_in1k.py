_base_ = [
    '_base_/models/dsnet.py',
    '_base_/datasets/imagenet_bs128_dsnet.py',
    '_base_/schedules/imagenet_bs1024_adamw_dsnet.py',
    '_base_/default_runtime.py',
]

model = dict(backbone=dict(arch='tiny'))
