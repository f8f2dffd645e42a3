"""Convert a checkpoint of the DSNet authors' PyTorch release into an MMPretrain checkpoint.

The source is their DeiT-style training file ``{'model': state_dict, 'optimizer', 'lr_scheduler',
'epoch', 'args', ...}`` or a bare state dict. The result loads with ``strict=True`` into
``ImageClassifier(backbone=dict(type='DSNet', arch=...), neck=dict(type='GlobalAveragePooling'),
head=dict(type='LinearClsHead', num_classes=1000, in_channels=512))``; with ``--backbone-only``
it holds the ``backbone.*`` keys only, for
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``. (After
``import mmdsnet`` the source file also loads as it is, converted in memory.)

Usage:
    python tools/model_converters/dsnet2mmdsnet.py SRC DST [--backbone-only] [--ema]
"""
import os.path as osp

from converter_cli import converter_parser, save_converted

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.models.backbones.dsnet_weights import (RELEASE_SIGNATURE_KEY, converted_checkpoint,
                                                    find_release_state_dict)


def release_state_dict(checkpoint, filename: str, use_ema: bool = False) -> dict:
    """The model (or EMA) weights of a DeiT-style training checkpoint or a bare state dict."""
    if use_ema:
        if 'model_ema' not in checkpoint:
            raise ValueError(f'--ema given, but {filename!r} has no "model_ema" entry')
        return checkpoint['model_ema']
    state_dict = find_release_state_dict(checkpoint)
    if state_dict is None:
        raise ValueError(f'{filename!r} holds no DSNet release weights: neither the file nor its '
                         f'"model" entry has {RELEASE_SIGNATURE_KEY!r}')
    return state_dict


def main(argv=None):
    parser = converter_parser(
        "Convert a DSNet (authors' PyTorch release) checkpoint to MMPretrain.", 'source .pth file')
    parser.add_argument('--ema', action='store_true',
                        help='convert the "model_ema" weights instead of "model"')
    args = parser.parse_args(argv)
    checkpoint = load_torch_file(args.src)
    converted = converted_checkpoint(
        release_state_dict(checkpoint, args.src, args.ema),
        backbone_only=args.backbone_only,
        source=osp.basename(args.src),
        source_format='DSNet authors\' PyTorch release' + (' (EMA)' if args.ema else ''),
        source_epoch=checkpoint.get('epoch'))
    save_converted(converted, args.dst)


if __name__ == '__main__':
    main()
