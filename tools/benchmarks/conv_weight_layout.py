"""Time one DSNet with its convolution weights stored NCHW and channels-last, alternately.

    python tools/benchmarks/conv_weight_layout.py [--arch small] [--batch 8] [--rounds 16]

Run-to-run noise on a shared CPU is larger than the effect of the weights' layout, so both
layouts are timed in one process, on one model, in alternating order; the stages run on
channels-last maps either way. Prints the median of each and how often channels-last won.
"""
import argparse
import statistics
import time

import torch

from mmdsnet.models import DSNet

LAYOUTS = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='small')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=16)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Returns, per step, the median milliseconds of each layout."""
    args = parse_args(argv)
    torch.manual_seed(0)
    model = DSNet(args.arch)
    images = torch.rand(args.batch, 3, args.size, args.size)

    def inference():
        model.eval()
        with torch.no_grad():
            model(images)

    def training_step():
        model.train()
        model.zero_grad(set_to_none=True)
        model(images)[0].mean().backward()

    print(f'DSNet-{args.arch}, batch {args.batch}, {args.size}x{args.size}, '
          f'{torch.get_num_threads()} threads, {args.rounds} rounds')
    print(f'{"step":<14}{"nchw ms":>10}{"channels_last ms":>18}{"channels_last faster":>22}')
    medians = {}
    for step in (inference, training_step):
        times = {layout: [] for layout in LAYOUTS}
        for round_index in range(args.rounds):
            order = list(LAYOUTS) if round_index % 2 == 0 else list(reversed(LAYOUTS))
            for layout in order:
                model.to(memory_format=LAYOUTS[layout])  # the 4-d tensors: conv weights
                step()  # the first call after a change of layout is not timed
                start = time.perf_counter()
                step()
                times[layout].append(time.perf_counter() - start)
        median = medians[step.__name__] = {
            layout: 1000 * statistics.median(step_times) for layout, step_times in times.items()}
        wins = sum(cl < nchw for cl, nchw in zip(times['channels_last'], times['nchw']))
        print(f'{step.__name__:<14}{median["nchw"]:>10.1f}{median["channels_last"]:>18.1f}'
              f'{f"{wins} of {args.rounds}":>22}')
    return medians


if __name__ == '__main__':
    main()
