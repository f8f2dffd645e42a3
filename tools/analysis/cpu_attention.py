"""Time DSNet's CPU attention kernels against plain SDPA, alternately, in one process.

    python tools/analysis/cpu_attention.py [--arch small] [--size 800 1344] [--rounds 3]

The backbone's forward + backward at one image of ``--size`` is timed with the attention of
:mod:`mmdsnet.models.layers.attention_kernels` as committed (``kernels``) and with every call
sent straight to ``F.scaled_dot_product_attention`` (``sdpa``, the previous code), on one model,
in alternating order, for each attention dropout rate of ``--dropout``. With dropout the kernels
run :class:`ChunkedAttention` where SDPA falls back to materialising the weights; without it
both variants run SDPA (a control). Prints the medians and how often the kernels won; writes
JSON.
"""
import argparse
import contextlib
import json
import platform
import statistics
import time

import torch

import mmdsnet  # noqa: F401  (applies the compat fixes)
from mmdsnet.models import DSNet
from mmdsnet.models.layers import attention_kernels

VARIANTS = ('kernels', 'sdpa')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='small')
    parser.add_argument('--size', type=int, nargs=2, default=[800, 1344], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--dropout', type=float, nargs='+', default=[0., 0.1],
                        help='attention dropout rates to time, each in its own table row')
    parser.add_argument('--out', help='write the medians as JSON here')
    return parser.parse_args(argv)


@contextlib.contextmanager
def plain_sdpa():
    """Every attention call as ``F.scaled_dot_product_attention`` (the code before the kernels)."""
    original = attention_kernels._eager_cpu
    attention_kernels._eager_cpu = lambda query: False
    try:
        yield
    finally:
        attention_kernels._eager_cpu = original


def main(argv=None) -> dict:
    """Returns, per dropout rate, the median milliseconds of each variant."""
    args = parse_args(argv)
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, *args.size)
    print(f'DSNet-{args.arch} forward + backward, {args.batch}x3x{args.size[0]}x{args.size[1]}, '
          f'{torch.get_num_threads()} threads, {args.rounds} rounds')
    print(f'{"attn dropout":<14}{"kernels ms":>12}{"sdpa ms":>12}{"kernels faster":>16}')
    results = {}
    for dropout in args.dropout:
        model = DSNet(args.arch, out_indices=(0, 1, 2, 3), attn_drop_rate=dropout).train()

        def step():
            model.zero_grad(set_to_none=True)
            sum(out.mean() for out in model(images)).backward()

        step()  # first-call allocations, untimed
        times = {variant: [] for variant in VARIANTS}
        for round_index in range(args.rounds):
            order = VARIANTS if round_index % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                with plain_sdpa() if variant == 'sdpa' else contextlib.nullcontext():
                    start = time.perf_counter()
                    step()
                    times[variant].append(1000 * (time.perf_counter() - start))
        medians = {variant: round(statistics.median(t), 1) for variant, t in times.items()}
        wins = sum(k < s for k, s in zip(times['kernels'], times['sdpa']))
        results[str(dropout)] = dict(median_ms=medians, kernels_faster=f'{wins} of {args.rounds}',
                                     ms=times)
        print(f'{dropout:<14}{medians["kernels"]:>12.1f}{medians["sdpa"]:>12.1f}'
              f'{f"{wins} of {args.rounds}":>16}', flush=True)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(settings=vars(args), torch=torch.__version__,
                           cpu=platform.processor() or platform.machine(),
                           threads=torch.get_num_threads(), results=results), file, indent=2)
    return results


if __name__ == '__main__':
    main()
