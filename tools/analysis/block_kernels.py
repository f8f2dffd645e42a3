"""Time DSNet with and without two kernel choices of its blocks, alternately, in one process.

    python tools/analysis/block_kernels.py --device cuda --dtype bf16 [--rounds 5] [--profile]

The choices (both compute the same function; see ``mmdsnet/models/backbones/dsnet.py``):

- ``pointwise``: 1x1 convolutions on channels-last maps as ``F.linear`` (bias added inside the
  matrix product); off: ``nn.Conv2d``'s convolution kernel, then a separate bias pass.
- ``upsample``: the global stream's upsampling as two matrix products; off: ``F.interpolate``,
  whose CUDA backward scatters gradients with atomic adds.

Each variant (both on = the default, each off alone, both off) is timed on the same model for
inference, a classification training step (AdamW) and a dense forward + backward, in rotating
order, for ``--rounds`` rounds. Prints median milliseconds per step and variant and writes JSON.
"""
import argparse
import contextlib
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import mmdsnet  # noqa: F401  (applies the compat fixes)
from mmdsnet.models import DSNet
from mmdsnet.models.backbones import dsnet

VARIANTS = {
    'default': (True, True),
    'pointwise_off': (False, True),
    'upsample_off': (True, False),
    'both_off': (False, False),
}
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='bf16', choices=DTYPES)
    parser.add_argument('--arch', default='small')
    parser.add_argument('--batch', type=int, default=256, help='inference batch at 224')
    parser.add_argument('--train-batch', type=int, default=128, help='training batch at 224')
    parser.add_argument('--dense-batch', type=int, default=2)
    parser.add_argument('--dense-size', type=int, nargs=2, default=[800, 1344])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--profile', action='store_true',
                        help='print the top kernels of a training step with both choices on and '
                        'with both off')
    parser.add_argument('--out', help='write the medians as JSON here')
    return parser.parse_args(argv)


@contextlib.contextmanager
def kernel_choices(pointwise: bool, upsample: bool):
    """Switch the two choices off by putting the plain PyTorch calls in their place."""
    with contextlib.ExitStack() as stack:
        if not pointwise:
            stack.enter_context(_patched(dsnet.PointwiseConv, 'forward', nn.Conv2d.forward))
        if not upsample:
            stack.enter_context(_patched(
                dsnet, 'upsample_bilinear_by_matmul',
                lambda x, size: F.interpolate(x, size, mode='bilinear', align_corners=False)))
        yield


@contextlib.contextmanager
def _patched(owner, name, value):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class Classifier(nn.Module):
    """DSNet, global average pooling and a 1000-class linear layer."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = DSNet(arch)
        self.head = nn.Linear(self.backbone.embed_dims[-1], 1000)

    def forward(self, images):
        return self.head(self.backbone(images)[-1].mean((2, 3)))


def make_steps(args):
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]

    def autocast():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    torch.manual_seed(0)
    classifier = Classifier(args.arch).to(device)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=1e-4)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    train_images = images[:args.train_batch]
    labels = torch.randint(0, 1000, (args.train_batch, ), device=device)
    dense_model = DSNet(args.arch, out_indices=(0, 1, 2, 3), attn_drop_rate=0.).to(device)
    dense_images = torch.randn(args.dense_batch, 3, *args.dense_size, device=device)

    def inference():
        classifier.eval()
        with torch.no_grad(), autocast():
            classifier(images)

    def training_step():
        classifier.train()
        with autocast():
            loss = F.cross_entropy(classifier(train_images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def dense_step():
        dense_model.train()
        dense_model.zero_grad(set_to_none=True)
        with autocast():
            loss = sum(out.float().mean() for out in dense_model(dense_images))
        loss.backward()

    return {'inference': inference, 'training_step': training_step, 'dense_step': dense_step}


def time_once(step, device):
    if device.type == 'cuda':
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    start = time.perf_counter()
    step()
    return 1000 * (time.perf_counter() - start)


def profile_step(title, step, device):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if device.type == 'cuda' else [])
    with profile(activities=activities) as profiler:
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
    sort_by = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    print(f'{title}: profile of one step')
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=15))


def main(argv=None) -> dict:
    """Returns, per step and variant, the median milliseconds."""
    args = parse_args(argv)
    device = torch.device(args.device)
    steps = make_steps(args)
    names = list(VARIANTS)
    medians = {}
    print(f'DSNet-{args.arch} on {device}, {args.dtype}, {args.rounds} rounds')
    print(f'{"step":<15}' + ''.join(f'{name:>15}' for name in names))
    for step_name, step in steps.items():
        times = {name: [] for name in names}
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                with kernel_choices(*VARIANTS[name]):
                    step()  # the first call after a switch is not timed
                    times[name].append(time_once(step, device))
        medians[step_name] = {name: round(statistics.median(t), 2) for name, t in times.items()}
        print(f'{step_name:<15}' + ''.join(f'{medians[step_name][name]:>15.2f}' for name in names))
    if args.profile:
        for name in ('default', 'both_off'):
            with kernel_choices(*VARIANTS[name]):
                profile_step(f'training step, {name}', steps['training_step'], device)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(settings=vars(args), torch=torch.__version__,
                           gpu=torch.cuda.get_device_name() if device.type == 'cuda' else None,
                           median_ms=medians), file, indent=2)
    return medians


if __name__ == '__main__':
    main()
