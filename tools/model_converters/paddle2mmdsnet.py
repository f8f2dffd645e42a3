"""Convert PaddleClas DSNet weights (``.pdparams``) into an MMPretrain checkpoint.

Paddle is not needed: the file is read by :func:`mmdsnet.checkpoint.load_pdparams`, which
rebuilds numpy arrays and nothing else. The result loads with ``strict=True`` into
``ImageClassifier(backbone=dict(type='DSNet', arch=...), neck=dict(type='GlobalAveragePooling'),
head=dict(type='LinearClsHead', num_classes=1000, in_channels=512))``; with ``--backbone-only``
it holds the ``backbone.*`` keys only, for
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. (After
``import mmdsnet`` the ``.pdparams`` file also loads as it is, converted in memory.)

Usage:
    python tools/model_converters/paddle2mmdsnet.py SRC DST [--backbone-only]
"""
import os.path as osp

from converter_cli import converter_parser, save_converted

from mmdsnet.checkpoint import load_pdparams
from mmdsnet.models.backbones.dsnet_weights import converted_checkpoint, paddle_to_release_layout


def main(argv=None):
    args = converter_parser('Convert PaddleClas DSNet weights (.pdparams) to MMPretrain.',
                            'source .pdparams file').parse_args(argv)
    converted = converted_checkpoint(
        paddle_to_release_layout(load_pdparams(args.src)),
        backbone_only=args.backbone_only,
        source=osp.basename(args.src),
        source_format='PaddleClas .pdparams')
    save_converted(converted, args.dst)


if __name__ == '__main__':
    main()
