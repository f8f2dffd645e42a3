"""Count the ATen operators that one dense forward + backward dispatches, per backbone.

    python tools/benchmarks/op_count.py [--models dsnet_small swin_tiny resnet50] [--size 256 256]
        [--dtype bf16] [--out counts.json]

On a GPU a step whose kernels are small waits for the host, which pays a roughly fixed cost for
every operator it dispatches (docs/benchmarks.md, run 3). The count does not depend on the
machine or the input size, so it is measured here on the CPU: the backbones of
``tools/benchmarks/benchmark.py``'s dense mode, one image, under autocast like the GPU runs (CPU
autocast casts the same convolutions and matrix products). View and metadata operators are
counted too: each costs a dispatch, though no kernel. Prints the totals and the most frequent
operators, and writes JSON.
"""
import argparse
import json
from contextlib import nullcontext

import benchmark  # the sibling script (this script's folder is on sys.path): backbone builders
import torch

from mmdsnet.analysis import OperatorCounter


def count_step(name, size, dtype):
    """Operators of one forward + backward of backbone ``name`` (after one uncounted step)."""
    backbone = benchmark.build_backbone(name, {})
    backbone.train()
    images = torch.randn(1, 3, *size)

    def step():
        backbone.zero_grad(set_to_none=True)
        cast = torch.autocast('cpu', dtype=dtype) if dtype is not None else nullcontext()
        with cast:
            loss = sum(out.float().mean() for out in backbone(images))
        loss.backward()

    step()
    with OperatorCounter() as counter:
        step()
    return counter.counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=['dsnet_small', 'swin_tiny', 'resnet50'])
    parser.add_argument('--size', type=int, nargs=2, default=[256, 256])
    parser.add_argument('--dtype', default='bf16', choices=['fp32', 'bf16'])
    parser.add_argument('--top', type=int, default=8, help='most frequent operators to list')
    parser.add_argument('--out', help='write the counts as JSON here')
    args = parser.parse_args(argv)
    dtype = None if args.dtype == 'fp32' else torch.bfloat16
    rows = []
    for name in args.models:
        counts = count_step(name, args.size, dtype)
        rows.append(dict(model=name, operators=sum(counts.values()),
                         most_frequent=dict(counts.most_common(args.top)), counts=dict(counts)))
        top = ', '.join(f'{op} {n}' for op, n in counts.most_common(args.top))
        print(f'{name:14s} {sum(counts.values()):6d} operators  ({top})', flush=True)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(torch=torch.__version__, size=args.size, dtype=args.dtype,
                           results=rows), file, indent=2)
    return rows


if __name__ == '__main__':
    main()
