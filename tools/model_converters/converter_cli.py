"""What the two release converters share: their command line and how they write the result.

The converters import it as a sibling module (running a script puts its folder first on
``sys.path``); it imports from ``mmdsnet``, never the other way round.
"""
import argparse

from mmdsnet.engine.checkpoint_files import save_torch_file
from mmdsnet.models import DSNet


def converter_parser(description: str, source_help: str) -> argparse.ArgumentParser:
    """The arguments of both converters: ``SRC DST [--backbone-only]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=source_help)
    parser.add_argument('dst', help='destination .pth file')
    parser.add_argument('--backbone-only', action='store_true',
                        help='write only the backbone.* keys (for detection init_cfg)')
    return parser


def save_converted(checkpoint: dict, filename: str) -> None:
    """Name the arch of a converted checkpoint in its meta (``'tiny'``, ``'small'``, ``'base'``,
    or None for another), write it atomically with its checksum, and say what was written."""
    meta = checkpoint['meta']
    settings = [meta['depths'], meta['embed_dims']]
    meta['arch'] = next((name for name, arch in DSNet.arch_zoo.items()
                         if [arch['depths'], arch['embed_dims']] == settings), None)
    save_torch_file(checkpoint, filename)
    print(f'wrote {len(checkpoint["state_dict"])} tensors ({checkpoint["meta"]["arch"]} arch) '
          f'to {filename}')
