"""Time DSNet under alternative kernel choices, each switched on and off in one process.

    python tools/benchmarks/kernel_study.py --device cuda --dtype bf16 --out study.json \
        [--steps dense training inference] [--rounds 5] [--profile]

Every variant computes the same function as the committed code; only the kernels differ:

- ``committed``: the code as it is.
- ``cudnn_benchmark``: ``torch.backends.cudnn.benchmark = True`` (MMEngine's default is off), so
  cuDNN times its convolution algorithms for each shape and keeps the fastest.
- ``sdpa_flash`` / ``sdpa_efficient`` / ``sdpa_cudnn``: every ``scaled_dot_product_attention``
  call restricted to the flash, memory-efficient or cuDNN kernel (torch 2.11 picks cuDNN's on
  an H100/H200).
- ``depthwise_nchw``: the depthwise convolutions (position encoding and local stream) run on an
  NCHW copy of their channels-last input, which takes PyTorch's own depthwise kernels.
- ``global_queries_explicit``: the co-attention direction with few queries and many keys (global
  queries, local keys/values) as explicit matrix products in the input dtype. Flash attention
  parallelises over query blocks, so 1,050 global queries of one head fill 18 blocks of an
  H100's 132 multiprocessors; the explicit form is three large matrix products instead.
- ``adamw_fused``: the training step's AdamW with ``fused=True`` (one kernel for all parameters
  instead of a few per parameter group); the other steps ignore it.

Steps: ``dense`` is the Mask R-CNN config's DSNet forward + backward at ``--dense-batch`` x 3 x
``--dense-size``, beside mmdet's Swin-T backbone; ``training`` and ``inference`` are the
classifier at 224 (batch 128 with AdamW, and batch 256; ``inference_deploy`` after
``switch_to_deploy()``); ``detector`` is the Mask R-CNN
training step of ``tools/benchmarks/benchmark.py`` (fp16 AMP), beside mmdet's Swin-T. Variants
rotate for ``--rounds`` rounds; each round warms a variant up once before timing it. Prints
median milliseconds and peak memory per step and variant (and the ratio to Swin-T where it ran)
and writes JSON. ``--profile`` prints the top CUDA kernels and operators of the committed dense
step first. CUDA only (``--device cpu`` runs the code paths, for checking, with CPU timings).
"""
import argparse
import contextlib
import copy
import json
import statistics
import sys

import benchmark  # the sibling script (this script's folder is on sys.path): builders, timer
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmdsnet  # noqa: F401  (registers DSNet, applies the compat fixes)
from mmdsnet.models.backbones import dsnet as dsnet_module

DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
STEPS = ('dense', 'training', 'inference', 'inference_deploy', 'detector')
# The training step's optimizer, switched by the ``adamw_fused`` variant.
OPTIMIZER = {'fused': False}
# A co-attention call whose keys outnumber its queries by this much is the global-queries one.
FEW_QUERIES = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='bf16', choices=DTYPES)
    parser.add_argument('--arch', default='small')
    parser.add_argument('--steps', nargs='+', default=['dense', 'training', 'inference'],
                        choices=list(STEPS))
    parser.add_argument('--variants', nargs='+', default=None,
                        help='default: all that this torch supports')
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--train-batch', type=int, default=128)
    parser.add_argument('--dense-batch', type=int, default=2)
    parser.add_argument('--dense-size', type=int, nargs=2, default=[800, 1344])
    parser.add_argument('--det-batch', type=int, default=2)
    parser.add_argument('--det-size', type=int, nargs=2, default=[800, 1333])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=3, help='timed steps per round')
    parser.add_argument('--profile', action='store_true')
    parser.add_argument('--out', help='write the medians as JSON here')
    return parser.parse_args(argv)


@contextlib.contextmanager
def patched(owner, name, value):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def patched_item(mapping, key, value):
    original = mapping[key]
    mapping[key] = value
    try:
        yield
    finally:
        mapping[key] = original


@contextlib.contextmanager
def cudnn_benchmark():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def sdpa_backend(name):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return lambda: sdpa_kernel(getattr(SDPBackend, name))


def _depthwise_on_nchw(conv, x):
    out = F.conv2d(x.contiguous(), conv.weight.contiguous(), conv.bias, conv.stride,
                   conv.padding, conv.dilation, conv.groups)
    return out.contiguous(memory_format=torch.channels_last)


def depthwise_nchw():
    """Every depthwise ``nn.Conv2d`` through :func:`_depthwise_on_nchw`."""
    original = nn.Conv2d.forward

    def forward(conv, x):
        if conv.groups > 1 and conv.groups == conv.in_channels:
            return _depthwise_on_nchw(conv, x)
        return original(conv, x)

    return patched(nn.Conv2d, 'forward', forward)


def global_queries_explicit():
    original = dsnet_module.attention

    def attention(query, key, value, scale, dropout_p, fused):
        if query.shape[-2] * FEW_QUERIES > key.shape[-2] or dropout_p > 0:
            return original(query, key, value, scale, dropout_p, fused)
        weights = (query @ key.transpose(-2, -1)).mul_(scale).softmax(-1, dtype=query.dtype)
        return weights @ value

    return patched(dsnet_module, 'attention', attention)


def variants():
    found = {'committed': contextlib.nullcontext, 'cudnn_benchmark': cudnn_benchmark,
             'depthwise_nchw': depthwise_nchw,
             'global_queries_explicit': global_queries_explicit,
             'adamw_fused': lambda: patched_item(OPTIMIZER, 'fused', True)}
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:
        return found
    for backend in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'CUDNN_ATTENTION'):
        if hasattr(SDPBackend, backend):
            found['sdpa_' + backend.split('_')[0].lower()] = sdpa_backend(backend)
    return found


def make_steps(args):
    """name -> (step, peer step or None)."""
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]

    def autocast():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    torch.manual_seed(0)
    steps = {}
    if 'dense' in args.steps:
        def dense_step(backbone, images):
            def step():
                backbone.zero_grad(set_to_none=True)
                with autocast():
                    loss = sum(out.float().mean() for out in backbone(images))
                loss.backward()
            return step

        images = torch.randn(args.dense_batch, 3, *args.dense_size, device=device)
        dsnet = benchmark.build_backbone(f'dsnet_{args.arch}', {}).to(device).train()
        swin = benchmark.build_backbone('swin_tiny', {}).to(device)
        swin.train()
        steps['dense'] = (dense_step(dsnet, images), dense_step(swin, images))
    if 'detector' in args.steps:
        options = argparse.Namespace(device=args.device, det_batch=args.det_batch,
                                     det_size=args.det_size, dsnet_options={})
        dsnet_step, _ = benchmark.setup_detector(f'mask_rcnn_dsnet_{args.arch}', options)
        swin_step, _ = benchmark.setup_detector('mask_rcnn_swin_tiny', options)
        steps['detector'] = (dsnet_step, swin_step)
    if {'training', 'inference', 'inference_deploy'} & set(args.steps):
        classifier = benchmark.build_classifier(f'dsnet_{args.arch}', {}).to(device)
        deployed = copy.deepcopy(classifier).eval()
        deployed.model.backbone.switch_to_deploy()
        fused = device.type == 'cuda'
        optimizers = {False: torch.optim.AdamW(classifier.parameters(), lr=1e-4),
                      True: torch.optim.AdamW(classifier.parameters(), lr=1e-4, fused=fused)}
        images = torch.randn(args.batch, 3, 224, 224, device=device)
        labels = torch.randint(0, 1000, (args.train_batch, ), device=device)

        def training_step():
            classifier.train()
            with autocast():
                loss = F.cross_entropy(classifier(images[:args.train_batch]), labels)
            loss.backward()
            optimizer = optimizers[OPTIMIZER['fused']]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def inference(model):
            def step():
                model.eval()
                with torch.no_grad(), autocast():
                    model(images)
            return step

        candidates = {'training': training_step, 'inference': inference(classifier),
                      'inference_deploy': inference(deployed)}
        steps.update({name: (step, None) for name, step in candidates.items()
                      if name in args.steps})
    return steps


def time_ms(step, repeats, device):
    timer = benchmark.Timer(device, warmup=0, repeats=1)
    return [1000 * timer(step) for _ in range(repeats)]


def synchronize_and_reset_peak(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == 'cuda' else 0.


def profile(title, step, device):
    from torch.profiler import ProfilerActivity, profile
    on_gpu = device.type == 'cuda'
    for _ in range(2):  # warm: cuDNN builds its plans at the first call of each shape
        step()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else []),
                 record_shapes=True) as profiler:
        for _ in range(3):
            step()
        synchronize_and_reset_peak(device)
    unit = 'cuda' if on_gpu else 'cpu'
    print(f'{title}: kernels and operators by self {unit} time (3 steps)')
    print(profiler.key_averages().table(sort_by=f'self_{unit}_time_total', row_limit=30))
    print(f'{title}: operators and input shapes by total {unit} time (3 steps)')
    print(profiler.key_averages(group_by_input_shape=True).table(
        sort_by=f'{unit}_time_total', row_limit=25))


def main(argv=None):
    args = parse_args(argv)
    available = variants()
    names = args.variants or list(available)
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f'unknown or unsupported variants {unknown}; this torch has '
                         f'{sorted(available)}')
    device = torch.device(args.device)
    steps = make_steps(args)
    if args.profile and 'dense' in steps:
        profile('dense, committed', steps['dense'][0], device)
    results = {}
    for step_name, (step, peer) in steps.items():
        times = {name: [] for name in names}
        peaks = {}
        for _ in range(args.rounds):
            for name in names:
                with available[name]():
                    step()
                    synchronize_and_reset_peak(device)
                    times[name] += time_ms(step, args.repeats, device)
                    peaks[name] = max(peaks.get(name, 0.), peak_gb(device))
        rows = {name: dict(ms=round(statistics.median(times[name]), 2),
                           peak_gb=round(peaks[name], 3)) for name in names}
        if peer is not None:
            peer()
            synchronize_and_reset_peak(device)
            peer_ms = statistics.median(time_ms(peer, args.rounds * args.repeats, device))
            rows['swin_tiny'] = dict(ms=round(peer_ms, 2), peak_gb=round(peak_gb(device), 3))
            for row in rows.values():
                row['vs_swin'] = round(row['ms'] / peer_ms, 3)
        results[step_name] = rows
        print(f'\n{step_name}: median ms and peak GB')
        for name, row in rows.items():
            print(f'  {name:26s} {row["ms"]:9.2f} ms {row["peak_gb"]:7.3f} GB'
                  + (f'  {row["vs_swin"]:.3f}x Swin-T' if 'vs_swin' in row else ''))
        sys.stdout.flush()
    report = dict(machine=benchmark.machine(args), settings=vars(args), results=results)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == '__main__':
    main()
