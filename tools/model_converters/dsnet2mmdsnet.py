"""Convert a checkpoint of the DSNet authors' PyTorch release into an MMPretrain checkpoint.

The source is their DeiT-style training file ``{'model': state_dict, 'optimizer', 'lr_scheduler',
'epoch', 'args', ...}`` or a bare state dict. The result loads with ``strict=True`` into
``ImageClassifier(backbone=dict(type='DSNet', arch=...), neck=dict(type='GlobalAveragePooling'),
head=dict(type='LinearClsHead', num_classes=1000, in_channels=512))``; with ``--backbone-only``
it holds the ``backbone.*`` keys only, for
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.

Usage:
    python tools/model_converters/dsnet2mmdsnet.py SRC DST [--backbone-only] [--ema]
"""
import argparse
import os.path as osp

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.models.backbones.dsnet_convert import converted_checkpoint, save_converted


def release_state_dict(checkpoint: dict, use_ema: bool = False) -> dict:
    """The model weights of a DeiT-style training checkpoint (or of a bare state dict)."""
    if use_ema:
        if 'model_ema' not in checkpoint:
            raise ValueError('--ema given, but the checkpoint has no "model_ema" entry')
        return checkpoint['model_ema']
    return checkpoint.get('model', checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a DSNet (authors\' PyTorch release) checkpoint to MMPretrain.')
    parser.add_argument('src', help='source .pth file')
    parser.add_argument('dst', help='destination .pth file')
    parser.add_argument('--backbone-only', action='store_true',
                        help='write only the backbone.* keys (for detection init_cfg)')
    parser.add_argument('--ema', action='store_true',
                        help='convert the "model_ema" weights instead of "model"')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoint = load_torch_file(args.src)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{args.src!r} holds a {type(checkpoint).__name__}, not a checkpoint')
    converted = converted_checkpoint(
        release_state_dict(checkpoint, args.ema),
        backbone_only=args.backbone_only,
        source=osp.basename(args.src),
        source_format='DSNet authors\' PyTorch release' + (' (EMA)' if args.ema else ''),
        source_epoch=checkpoint.get('epoch'))
    save_converted(converted, args.dst)


if __name__ == '__main__':
    main()
