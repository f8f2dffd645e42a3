"""Time the global stream's bilinear resizes in each DSNet-S stage: the block's and the releases'.

    python tools/benchmarks/resize_probe.py [--device cpu] [--dtype fp32] [--batch 256] \
        [--size 224] [--warmup 3] [--repeats 10] [--out resize.json]

Per stage, the downsampling of the global channels (a channel slice of the stage map) to the
global map and the upsampling back, at ``--batch`` x ``--size``: ``releases`` is
``F.interpolate`` on the releases' NCHW maps, ``block`` the resize as the DS-Block computes it
(:func:`resize_bilinear` on a channels-last slice; the contiguous tokens viewed as a map on the
way up). Each time is the median of ``--repeats`` runs after ``--warmup``, with
``benchmark.py``'s timer (CUDA events on a GPU); ``max_abs_diff`` is the largest difference of
the two results. Prints a table and writes JSON like ``benchmark.py`` (``--out``).
"""
import argparse
import os
import shlex
import sys

import torch
import torch.nn.functional as F
from benchmark import (DTYPES, REPO_ROOT, Timer, load_average, print_table,  # beside this script
                       write_report)

from mmdsnet.models import DSNet
from mmdsnet.models.layers import map_to_tokens, resize_bilinear, tokens_to_map


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='fp32', choices=DTYPES)
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--size', type=int, default=224, help='image side')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def interpolate(x, size):
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def probe(args, timer):
    """One row per stage and direction."""
    dtype = DTYPES[args.dtype]
    rows = []
    for stage, dsstage in enumerate(DSNet('small').stages):
        block = dsstage.blocks[0]
        side = args.size // 2**(stage + 2)
        size, small_size = (side, side), block.global_map_size(side, side)
        stage_map = torch.randn(args.batch, block.global_channels + block.local_channels, *size,
                                device=args.device, dtype=dtype)
        releases_slice = stage_map[:, :block.global_channels]
        block_slice = stage_map.contiguous(
            memory_format=torch.channels_last)[:, :block.global_channels]
        small_map = interpolate(releases_slice, small_size).contiguous()
        tokens = map_to_tokens(small_map).contiguous()
        for direction, input_size, releases, ours in (
                ('down', size, lambda: interpolate(releases_slice, small_size),
                 lambda: resize_bilinear(block_slice, small_size)),
                ('up', small_size, lambda: interpolate(small_map, size),
                 lambda: resize_bilinear(tokens_to_map(tokens, *small_size), size))):
            difference = (releases().float() - ours().float()).abs().max().item()
            rows.append(dict(what='resize', stage=stage + 1, direction=direction,
                             input='x'.join(map(str, (args.batch, block.global_channels,
                                                      *input_size))),
                             releases_us=round(timer(releases) * 1e6, 1),
                             block_us=round(timer(ours) * 1e6, 1),
                             max_abs_diff=float(f'{difference:.2g}')))
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    load_at_start = load_average()
    rows = probe(args, Timer(args.device, args.warmup, args.repeats))
    print_table(rows)
    command = shlex.join(['python', os.path.relpath(__file__, REPO_ROOT), *argv])
    write_report(args, rows, command, load_at_start)
    return rows


if __name__ == '__main__':
    main()
