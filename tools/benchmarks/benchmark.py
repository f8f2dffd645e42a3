"""Throughput, peak memory and FLOPs of DSNet beside its peers, measured in one run.

Measurements (``--what``, any of them in one run):

- ``classification``: inference (forward, no grad) and a training step (forward, backward,
  AdamW step) of the 1000-class classifier at ``--size``, for DSNet tiny/small/base and, when
  timm is installed, resnet50, swin_tiny_patch4_window7_224, pvt_v2_b2, convnext_tiny and
  deit_small_patch16_224.
- ``dense``: backbone forward + backward (loss: the sum of the means of the four stage outputs)
  at ``--dense-batch`` x 3 x ``--dense-size`` (default 800 x 1344) for ``--dense-models``:
  DSNet as ``dict(type='DSNet', arch=..., out_indices=(0, 1, 2, 3), **--dsnet-options)`` (the
  constructor's defaults otherwise, e.g. attention dropout 0.1 and drop path 0.1), and
  ``resnet50`` / ``swin_tiny`` / ``pvt_v2_b2`` as the ``model.backbone`` of mmdet's
  ``mask-rcnn_r50_fpn_1x_coco``, ``mask-rcnn_swin-t-p4-w7_fpn_1x_coco`` and
  ``retinanet_pvtv2-b2_fpn_1x_coco`` configs (``init_cfg=None``; as shipped otherwise, e.g.
  ResNet-50's frozen stem and eval-mode BatchNorms).
- ``detector``: one Mask R-CNN FPN training step (AdamW; ``AmpOptimWrapper``, i.e. fp16, on CUDA,
  fp32 ``OptimWrapper`` on CPU) for ``--det-models``: this repository's DSNet-T and DSNet-S COCO
  configs beside mmdet's ResNet-50 and Swin-T configs, with ``--det-batch`` synthetic images of
  ``--det-size`` (random boxes and box-shaped masks, seeded). The data preprocessor pads the batch
  to a multiple of 32 (1333 -> 1344), shown in the ``padded`` column. ``--dsnet-options`` also
  apply to the DSNet configs' backbones.
- ``segmentor``: the segmentation counterpart of ``detector``: one training step (as there) of
  ``--seg-models``, by default UperNet with DSNet-S (``configs/upernet_dsnet_small_ade20k.py``)
  beside MMSegmentation's Swin-T UperNet config
  (``swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512``), optionally the DSNet-T
  UperNet and the DSNet-T/S Semantic FPN configs, with ``--seg-batch`` synthetic images of
  ``--seg-size`` (default 2 x 512 x 512, the configs' crop) and random per-pixel labels of the
  150 ADE20K classes. The heads' SyncBN runs as BN (one process, as MMEngine's Runner reverts
  it when not distributed); ``--dsnet-options`` apply to the DSNet backbones.
- ``flops``: FLOPs of the backbones alone, batch 1, at each of ``--flops-sizes`` (default 224x224,
  512x512, 800x1344, 1024x2048) for ``--flops-models`` (DSNet-T/S/B, ResNet-50, Swin-T, PVT-v2-b2),
  plus DSNet-S with its global grid capped at ``--flops-global-cap`` tokens
  (``max_global_tokens``; skipped with a note where DSNet does not take it). Counted by MMEngine's
  ``FlopAnalyzer`` (what ``mmengine.analysis.get_model_complexity_info`` reports as ``flops``; a
  multiply-add counts one) on a jit trace under ``torch.no_grad()``; DSNet's fused attention
  counts as its explicit path (:mod:`mmdsnet.analysis`). Also writes a log-log plot of GFLOPs
  against megapixels (``--plot``).

- ``compile_cache``: how long the first, compiling, call of the compiled dense step takes in a
  fresh process with an empty inductor cache and then in another one with that cache filled
  (:func:`bench_compile_cache`).

With ``--compile`` every classification, dense, detector and segmentor model is measured eager
and compiled in the same run; each compiled row has the time of its first (compiling) call and
the speed-up over its eager row (``*_speedup``: eager time / compiled time).

The global stream's resizes are timed by ``tools/benchmarks/resize_probe.py``, which uses this
script's timer.

Each time is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones, timed with
CUDA events on a GPU. With ``--rounds N`` the dense, detector and segmentor models take turns N
times, each in a fresh process on the CPU, and each model keeps its median round, so that other
work on a shared machine slows each model alike. Peak memory in the dense, detector and
segmentor modes is ``torch.cuda.max_memory_allocated`` on a GPU (models measured one after
another in this process).
On the CPU every model is measured in a fresh child process (this script with ``--worker``), and
``peak_gb`` is that process's peak resident set size; ``mem_before_gb`` is its resident set just
before the first step (interpreter, imports, model, data), so ``peak_gb - mem_before_gb`` is the
steps' own share. ``time_vs_swin`` and ``mem_vs_swin`` are the ratios to the Swin-T row of the
same run. Prints a table and writes JSON with the command line, the machine (with the load
averages at the start and at the end of the run) and the settings (``--out``)::

    python tools/benchmarks/benchmark.py --device cuda --dtype bf16 --batch 256 \
        --train-batch 128 --channels-last --out work_dirs/benchmark.json
    python tools/benchmarks/benchmark.py --device cpu --what classification \
        --models dsnet_small swin_tiny_patch4_window7_224 --batch 8 --train-batch 8
    python tools/benchmarks/benchmark.py --device cpu --what dense --dense-batch 1 --warmup 1 \
        --repeats 3 --out work_dirs/dense_cpu.json
    python tools/benchmarks/benchmark.py --device cpu --what detector --det-batch 1 --warmup 1 \
        --repeats 3 --out work_dirs/detector_cpu.json
    python tools/benchmarks/benchmark.py --device cpu --what segmentor --rounds 3 --warmup 1 \
        --repeats 3 --seg-models upernet_dsnet_small upernet_swin_tiny fpn_dsnet_small \
        --out work_dirs/segmentor_cpu.json
    python tools/benchmarks/benchmark.py --device cpu --what flops --out work_dirs/flops.json
    python tools/benchmarks/benchmark.py --device cpu --what classification dense --compile \
        --models dsnet_small --batch 8 --train-batch 8 --dense-models dsnet_small swin_tiny
"""
import argparse
import copy
import gc
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

import torch
import torch.nn as nn
from mmengine.config import DictAction
from mmengine.hub import get_config

import mmdsnet  # noqa: F401  (registers DSNet, applies the compat fixes)
from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DSNET_ARCHS = ('tiny', 'small', 'base')
TIMM_PEERS = ('resnet50', 'swin_tiny_patch4_window7_224', 'pvt_v2_b2', 'convnext_tiny',
              'deit_small_patch16_224')
# Backbones taken from mmdet's own configs (``model.backbone``).
MMDET_BACKBONES = {
    'resnet50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'swin_tiny': 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'pvt_v2_b2': 'mmdet::pvt/retinanet_pvtv2-b2_fpn_1x_coco.py',
}
DETECTOR_CONFIGS = {
    'mask_rcnn_dsnet_tiny': 'configs/mask_rcnn_dsnet_tiny_coco.py',
    'mask_rcnn_dsnet_small': 'configs/mask_rcnn_dsnet_small_coco.py',
    'mask_rcnn_r50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn_swin_tiny': 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
}
SEGMENTOR_CONFIGS = {
    'upernet_dsnet_tiny': 'configs/upernet_dsnet_tiny_ade20k.py',
    'upernet_dsnet_small': 'configs/upernet_dsnet_small_ade20k.py',
    'fpn_dsnet_tiny': 'configs/fpn_dsnet_tiny_ade20k.py',
    'fpn_dsnet_small': 'configs/fpn_dsnet_small_ade20k.py',
    'upernet_swin_tiny':
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
}
SEGMENTOR_MODELS = ('upernet_dsnet_small', 'upernet_swin_tiny')
DENSE_MODELS = ('dsnet_tiny', 'dsnet_small', 'resnet50', 'swin_tiny')
FLOPS_MODELS = ('dsnet_tiny', 'dsnet_small', 'dsnet_base', 'resnet50', 'swin_tiny', 'pvt_v2_b2')
FLOPS_SIZES = ('224x224', '512x512', '800x1344', '1024x2048')
# The row every other row of a mode is compared with, and the time column of the mode.
REFERENCE = {'dense': 'swin_tiny', 'detector': 'mask_rcnn_swin_tiny',
             'segmentor': 'upernet_swin_tiny'}
TIME_KEY = {'dense': 'fwd_bwd_ms', 'detector': 'step_ms', 'segmentor': 'step_ms'}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--what', nargs='+', default=['classification', 'dense'],
                        choices=['classification', 'dense', 'detector', 'segmentor', 'flops',
                                 'compile_cache'])
    parser.add_argument('--models', nargs='+', default=None,
                        help='classification models (default: DSNet archs and the installed '
                        'timm peers); dsnet_<arch> or a timm model name')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='fp32', choices=DTYPES,
                        help='autocast dtype of the classification and dense modes '
                        '(fp32 = no autocast)')
    parser.add_argument('--batch', type=int, default=256, help='inference batch')
    parser.add_argument('--train-batch', type=int, default=128, help='training-step batch')
    parser.add_argument('--size', type=int, default=224, help='classification image side')
    parser.add_argument('--dense-models', nargs='+', default=list(DENSE_MODELS),
                        help='dense-mode backbones: dsnet_<arch> or one of '
                        f'{sorted(MMDET_BACKBONES)} (default: %(default)s)')
    parser.add_argument('--dense-batch', type=int, default=None,
                        help='dense-mode batch (default: 1 on CPU, 2 on CUDA)')
    parser.add_argument('--dense-size', type=int, nargs=2, default=[800, 1344],
                        metavar=('H', 'W'))
    parser.add_argument('--det-models', nargs='+', default=list(DETECTOR_CONFIGS),
                        choices=list(DETECTOR_CONFIGS), metavar='NAME',
                        help=f'detector configs, of {list(DETECTOR_CONFIGS)} (default: all)')
    parser.add_argument('--det-batch', type=int, default=None,
                        help='images per detector step (default: 1 on CPU, 2 on CUDA)')
    parser.add_argument('--det-size', type=int, nargs=2, default=[800, 1333],
                        metavar=('H', 'W'),
                        help='detector image size; padded to a multiple of 32 by the data '
                        'preprocessor (800 x 1333 runs as 800 x 1344)')
    parser.add_argument('--seg-models', nargs='+', default=list(SEGMENTOR_MODELS),
                        choices=list(SEGMENTOR_CONFIGS), metavar='NAME',
                        help=f'segmentor configs, of {list(SEGMENTOR_CONFIGS)} '
                        '(default: %(default)s)')
    parser.add_argument('--seg-batch', type=int, default=2,
                        help='images per segmentor step (default: %(default)s)')
    parser.add_argument('--seg-size', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'),
                        help='segmentor image size, the configs\' crop (default: %(default)s)')
    parser.add_argument('--flops-models', nargs='+', default=list(FLOPS_MODELS),
                        help='flops-mode backbones, as for --dense-models (default: %(default)s)')
    parser.add_argument('--flops-sizes', nargs='+', default=list(FLOPS_SIZES), metavar='HxW',
                        help='flops-mode input sizes (default: %(default)s)')
    parser.add_argument('--flops-global-cap', type=int, default=512,
                        help='also count DSNet-S with max_global_tokens=N (0: no such row)')
    parser.add_argument('--plot', default=None,
                        help='flops-mode plot (PNG; default: flops_vs_size.png beside --out, '
                        'else work_dirs/flops_vs_size.png)')
    parser.add_argument('--dsnet-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE',
                        help='DSNet constructor arguments, e.g. channels_last=False')
    parser.add_argument('--deploy', action='store_true',
                        help='time DSNet inference with its BatchNorms folded '
                        '(switch_to_deploy); training steps use the unfolded model')
    parser.add_argument('--channels-last', action='store_true',
                        help='convert every model and input to channels_last (DSNet already '
                        'runs channels_last inside unless --dsnet-options channels_last=False)')
    parser.add_argument(
        '--compile', nargs='?', const='both', default='no', choices=['no', 'only', 'both'],
        help='torch.compile: `both` (what --compile alone means) measures every model eager and '
        'compiled in this run, the compiled row with its speed-up over the eager one and the '
        'time of its first, compiling, step; `only` the compiled rows. Classifiers and dense '
        'backbones compile whole; detectors and segmentors compile their backbone, as training '
        "with the configs' compile switch does (mmdsnet.engine.compile)")
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend of the compiled rows (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='dense, detector and segmentor modes: measure the models in turn '
                        'this many times, each keeping its median round (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument('--skip-train', action='store_true',
                      help='classification: inference only')
    skip.add_argument('--skip-infer', action='store_true',
                      help='classification: the training step only (compiled, one graph less '
                      'to compile)')
    parser.add_argument('--profile', action='store_true',
                        help='also profile 3 steps of each measurement (inference and training '
                        'of each classifier, each dense backbone, detector and segmentor) and '
                        'print the operators that take the most time')
    parser.add_argument('--out', help='write the results as JSON here')
    # Internal: measure one dense, detector or segmentor model in this (fresh) process; see
    # run_in_child.
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    on_gpu = torch.device(args.device).type == 'cuda'
    if args.dense_batch is None:
        args.dense_batch = 2 if on_gpu else 1
    if args.det_batch is None:
        args.det_batch = 2 if on_gpu else 1
    return args


class Timer:
    """Median wall time of a callable, synchronised with CUDA events on a GPU."""

    def __init__(self, device, warmup, repeats):
        self.device = torch.device(device)
        self.warmup = warmup
        self.repeats = repeats

    def __call__(self, step):
        for _ in range(self.warmup):
            step()
        times = []
        for _ in range(self.repeats):
            if self.device.type == 'cuda':
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000)
            else:
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
        return statistics.median(times)


def reset_peak_memory(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device):
    if torch.device(device).type == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def current_rss_gb():
    """This process's resident set size now (Linux), else its peak so far."""
    try:
        with open('/proc/self/status') as file:
            for line in file:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return peak_rss_gb()


def peak_rss_gb():
    """This process's peak resident set size (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == 'darwin' else peak * 1024 / 2**30


def autocast(args):
    if args.dtype == 'fp32':
        return nullcontext()
    return torch.autocast(device_type=torch.device(args.device).type, dtype=DTYPES[args.dtype])


def build_in_scope(scope, cfg):
    """Build a model from ``scope``'s registry, whatever the process's default scope is."""
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def read_config(path):
    """An ``mmdet::`` config (from the installed package), or a config of this repository
    (``path`` from its root, wherever the script runs)."""
    return get_config(path) if '::' in path else load_config(os.path.join(REPO_ROOT, path))


def count_params_m(model):
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


def build_classifier(name, dsnet_options):
    """``dsnet_<arch>``: MMPretrain's ImageClassifier with DSNet; otherwise a timm model."""
    if name.startswith('dsnet_'):
        backbone = dict(type='DSNet', arch=name[len('dsnet_'):], **dsnet_options)
        classifier = build_in_scope(
            'mmpretrain',
            dict(type='ImageClassifier', backbone=backbone,
                 neck=dict(type='GlobalAveragePooling'),
                 head=dict(type='LinearClsHead', num_classes=1000, in_channels=512)))
        return _TensorForward(classifier)
    import timm
    return timm.create_model(name, num_classes=1000)


class _TensorForward(nn.Module):
    """Calls an OpenMMLab model in tensor mode so that all models share one call signature."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def build_backbone(name, dsnet_options):
    """A dense-prediction backbone returning its four stage maps: ``dsnet_<arch>`` or one of
    :data:`MMDET_BACKBONES`. Like the mmdet peers, DSNet is the backbone of its Mask R-CNN config
    (DSNet-S's for an arch without one), updated with ``dsnet_options``."""
    if name.startswith('dsnet_'):
        config = DETECTOR_CONFIGS.get(f'mask_rcnn_{name}',
                                      DETECTOR_CONFIGS['mask_rcnn_dsnet_small'])
        cfg = read_config(config).model.backbone
        cfg.update(arch=name[len('dsnet_'):], init_cfg=None, **dsnet_options)
        return build_in_scope('mmdet', cfg)
    if name in MMDET_BACKBONES:
        cfg = read_config(MMDET_BACKBONES[name]).model.backbone
        cfg.init_cfg = None
        return build_in_scope('mmdet', cfg)
    raise ValueError(f'unknown backbone {name!r}: dsnet_<arch> or one of '
                     f'{sorted(MMDET_BACKBONES)}')


def default_models():
    models = [f'dsnet_{arch}' for arch in DSNET_ARCHS]
    try:
        import timm  # noqa: F401
    except ImportError:
        return models
    return models + list(TIMM_PEERS)


def compile_modes(args):
    """Whether each measurement of a model runs compiled: eager first where both run."""
    return {'no': [False], 'only': [True], 'both': [False, True]}[args.compile]


def prepare(model, args, compiled):
    model = model.to(args.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model, backend=args.compile_backend) if compiled else model


def first_call_seconds(step, args):
    """Wall time of one call of ``step``: for a compiled model, the compile and the step."""
    start = time.perf_counter()
    step()
    if torch.device(args.device).type == 'cuda':
        torch.cuda.synchronize()
    return round(time.perf_counter() - start, 2)


def make_images(batch, height, width, args):
    images = torch.randn(batch, 3, height, width, device=args.device)
    return images.to(memory_format=torch.channels_last) if args.channels_last else images


def bench_classification(name, args, timer, compiled):
    torch._dynamo.reset()
    classifier = build_classifier(name, args.dsnet_options)
    row = dict(what='classification', model=name, compiled=compiled,
               params_m=count_params_m(classifier))

    model = prepare(classifier, args, compiled).eval()
    if not args.skip_infer:
        row.update(measure_inference(name, classifier, model, args, timer, compiled))
    if args.skip_train:
        return row
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = make_images(args.train_batch, args.size, args.size, args)
    labels = torch.randint(0, 1000, (args.train_batch, ), device=args.device)
    reset_peak_memory(args.device)

    def train_step():
        with autocast(args):
            loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if compiled:
        row['train_first_s'] = first_call_seconds(train_step, args)
    seconds = timer(train_step)
    if args.profile:
        print_profile(f'{name}: training steps, 3 batches of {args.train_batch}', train_step,
                      args)
    row.update(train_batch=args.train_batch, train_img_s=round(args.train_batch / seconds, 1),
               train_ms=round(seconds * 1000, 2), train_peak_gb=peak_memory_gb(args.device))
    return row


def measure_inference(name, classifier, model, args, timer, compiled):
    """The inference columns of a classification row: ``model`` (``classifier`` prepared) in
    eval mode, or with ``--deploy`` a prepared copy of DSNet with its BatchNorms folded."""
    inference_model = model
    if args.deploy and name.startswith('dsnet_'):
        deployed = copy.deepcopy(classifier)
        deployed.model.backbone.switch_to_deploy()
        inference_model = prepare(deployed, args, compiled)
    images = make_images(args.batch, args.size, args.size, args)
    reset_peak_memory(args.device)

    def infer():
        with torch.no_grad(), autocast(args):
            inference_model(images)

    columns = {}
    if compiled:
        columns['infer_first_s'] = first_call_seconds(infer, args)
    seconds = timer(infer)
    if args.profile:
        print_profile(f'{name}: inference, 3 batches of {args.batch}', infer, args)
    columns.update(infer_batch=args.batch, infer_img_s=round(args.batch / seconds, 1),
                   infer_ms=round(seconds * 1000, 2), infer_peak_gb=peak_memory_gb(args.device))
    return columns


def add_compile_speedups(rows, time_keys):
    """On each compiled row: ``<time>_speedup``, the eager row's time over the compiled row's
    (> 1: compiling pays), for each of ``time_keys`` both rows have."""
    eager = {row['model']: row for row in rows if row.get('compiled') is False}
    for row in rows:
        reference = eager.get(row['model'])
        if not row.get('compiled') or reference is None:
            continue
        for key in time_keys:
            if key in row and key in reference:
                row[f'{key}_speedup'] = round(reference[key] / row[key], 3)
    return rows


def print_profile(title, step, args):
    from torch.profiler import ProfilerActivity, profile

    on_gpu = torch.device(args.device).type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as profiler:
        for _ in range(3):
            step()
        if on_gpu:
            torch.cuda.synchronize()
    sort_by = 'self_cuda_time_total' if on_gpu else 'self_cpu_time_total'
    print(f'{title}: profile')
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=15))


def setup_dense(name, args, compiled):
    """A backbone forward + backward at the dense size: the step and its row."""
    height, width = args.dense_size
    backbone = build_backbone(name, args.dsnet_options)
    row = dict(what='dense', model=name, compiled=compiled,
               input=f'{args.dense_batch}x3x{height}x{width}',
               params_m=count_params_m(backbone))
    backbone = prepare(backbone, args, compiled)
    backbone.train()  # mmdet's ResNet and Swin return None from train()
    images = make_images(args.dense_batch, height, width, args)

    def step():
        backbone.zero_grad(set_to_none=True)
        with autocast(args):
            loss = sum(out.float().mean() for out in backbone(images))
        loss.backward()

    return step, row


def task_model_config(config, args):
    """The ``model`` of a detection or segmentation config, for a training step from random
    weights: no pretrained backbone, and ``--dsnet-options`` on a DSNet backbone."""
    model_cfg = read_config(config).model
    model_cfg.backbone.init_cfg = None
    if model_cfg.backbone.type == 'DSNet':
        model_cfg.backbone.update(args.dsnet_options)
    return model_cfg


def synthetic_batch(batch, height, width, annotate):
    """``batch`` random uint8 images of ``height`` x ``width`` and their data samples, as a
    dataloader hands them to ``train_step``; ``annotate(generator)`` makes each data sample
    (from one seeded generator: the same data in every run)."""
    generator = torch.Generator().manual_seed(0)
    samples, images = [], []
    for _ in range(batch):
        samples.append(annotate(generator))
        images.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                                    generator=generator))
    return dict(inputs=images, data_samples=samples)


def setup_train_step(scope, model_cfg, data, args, compiled):
    """One training step on ``data`` of an MMDetection or MMSegmentation model, as MMEngine's
    ``train_step`` runs it with an (Amp)OptimWrapper: AdamW, fp16 ``AmpOptimWrapper`` on CUDA,
    fp32 ``OptimWrapper`` on CPU. SyncBN runs as BN (one process, as MMEngine's Runner reverts
    it when not distributed). Compiled: the backbone, as the configs' ``compile`` switch
    compiles it. Returns the step and the model's parameters in millions."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper

    from mmdsnet.engine.compile import compile_backbone

    model = revert_sync_batchnorm(build_in_scope(scope, model_cfg))
    params_m = count_params_m(model)
    model = model.to(args.device).train()
    if compiled:
        compile_backbone(model, dict(backend=args.compile_backend))
    on_gpu = torch.device(args.device).type == 'cuda'
    optim_wrapper = build_optim_wrapper(
        model, dict(type='AmpOptimWrapper' if on_gpu else 'OptimWrapper',
                    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05)))

    def step():
        model.train_step(data, optim_wrapper)

    return step, params_m


def setup_detector(name, args, compiled):
    """One Mask R-CNN training step (:func:`setup_train_step`) on synthetic images with random
    boxes and box-shaped masks: the step and its row."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    height, width = args.det_size

    def annotate(generator):
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width), scale_factor=(1., 1.),
                                             batch_input_shape=(height, width)))
        corners = torch.rand(8, 2, generator=generator) * torch.tensor([width / 2, height / 2])
        boxes = torch.cat([corners, corners + torch.tensor([width / 3, height / 3])], dim=1)
        masks = torch.zeros(8, height, width, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        labels = torch.randint(0, 80, (8, ), generator=generator)
        sample.gt_instances = InstanceData(bboxes=boxes.to(args.device),
                                           labels=labels.to(args.device),
                                           masks=BitmapMasks(masks.numpy(), height, width))
        return sample

    model_cfg = task_model_config(DETECTOR_CONFIGS[name], args)
    step, params_m = setup_train_step(
        'mmdet', model_cfg, synthetic_batch(args.det_batch, height, width, annotate), args,
        compiled)
    divisor = model_cfg.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
    row = dict(what='detector', model=name, compiled=compiled,
               input=f'{args.det_batch}x3x{height}x{width}',
               padded=f'{math.ceil(height / divisor) * divisor}x'
               f'{math.ceil(width / divisor) * divisor}',
               params_m=params_m)
    return step, row


def setup_segmentor(name, args, compiled):
    """One UperNet / Semantic FPN training step (:func:`setup_train_step`) on synthetic images
    with random per-pixel labels of the config's classes: the step and its row. The data
    preprocessor's ``size`` (the configs' 512 x 512 crop, which it pads to) is ``--seg-size``."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    height, width = args.seg_size
    model_cfg = task_model_config(SEGMENTOR_CONFIGS[name], args)
    model_cfg.data_preprocessor.size = (height, width)

    def annotate(generator):
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, model_cfg.decode_head.num_classes, (1, height, width), generator=generator))
        return sample

    step, params_m = setup_train_step(
        'mmseg', model_cfg, synthetic_batch(args.seg_batch, height, width, annotate), args,
        compiled)
    row = dict(what='segmentor', model=name, compiled=compiled,
               input=f'{args.seg_batch}x3x{height}x{width}', params_m=params_m)
    return step, row


SETUPS = {'dense': setup_dense, 'detector': setup_detector, 'segmentor': setup_segmentor}


def measure(what, name, args, compiled):
    """Time ``what`` for one model in this process, with its memory before and at its peak.

    On CPU the peak is this process's peak RSS, so it means something only in a fresh process
    (:func:`run_in_child`)."""
    torch._dynamo.reset()
    step, row = SETUPS[what](name, args, compiled)
    on_gpu = torch.device(args.device).type == 'cuda'
    gc.collect()
    reset_peak_memory(args.device)
    before = torch.cuda.memory_allocated() / 2**30 if on_gpu else current_rss_gb()
    if compiled:
        row['first_step_s'] = first_call_seconds(step, args)
    seconds = Timer(args.device, args.warmup, args.repeats)(step)
    peak = peak_memory_gb(args.device) if on_gpu else peak_rss_gb()
    row[TIME_KEY[what]] = round(seconds * 1000, 2)
    row.update(memory='cuda_max_allocated' if on_gpu else 'peak_rss_fresh_process',
               mem_before_gb=round(before, 3), peak_gb=round(peak, 3))
    if args.profile:  # after the peak was read: the profiler's own memory does not count
        print_profile(f'{name}: {what} steps', step, args)
    return row


def run_in_child(what, name, args, compiled, env=None):
    """:func:`measure` in a fresh Python process (this script with ``--worker``), so that its
    peak RSS is this model's alone. A child that dies (e.g. killed for memory) gives a row with
    an ``error`` and the run goes on."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = os.path.join(tmp, 'spec.json'), os.path.join(tmp, 'row.json')
        with open(spec, 'w') as file:
            json.dump(dict(what=what, model=name, compiled=compiled, args=settings(args),
                           out=out), file)
        env = {**os.environ, **(env or {})}
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
        returncode = subprocess.run(
            [sys.executable, os.path.abspath(__file__), '--worker', spec], env=env).returncode
        if returncode == 0 and os.path.exists(out):
            with open(out) as file:
                return json.load(file)
    reason = f'signal {-returncode}' if returncode < 0 else f'exit code {returncode}'
    if returncode == -9:
        reason += ' (killed; out of memory?)'
    print(f'{what} {name}: the measuring process failed with {reason}; its output is above')
    return dict(what=what, model=name, compiled=compiled, error=reason)


def worker(spec_path):
    with open(spec_path) as file:
        spec = json.load(file)
    args = argparse.Namespace(**spec['args'])
    row = measure(spec['what'], spec['model'], args, spec['compiled'])
    with open(spec['out'], 'w') as file:
        json.dump(row, file)


def bench_isolated(what, names, args):
    """Each model measured on its own, eager and/or compiled (``--compile``): in a fresh process
    on CPU, one after another here on a GPU; then the ratios to the reference (Swin-T, eager)
    row and of the compiled rows to the eager ones. With ``--rounds N`` the models take turns N
    times (A, B, A, B, ...), so that other work on the machine slows each of them alike, and each
    keeps the row of its median round (:func:`median_round`)."""
    time_key = TIME_KEY[what]
    runs = {}
    for round_index in range(args.rounds):
        for name in names:
            for compiled in compile_modes(args):
                if torch.device(args.device).type == 'cuda':
                    row = row_or_error(
                        what, name, args,
                        lambda name=name, compiled=compiled: measure(what, name, args, compiled),
                        compiled)
                    gc.collect()
                    torch.cuda.empty_cache()
                else:
                    turn = f', round {round_index + 1} of {args.rounds}' if args.rounds > 1 else ''
                    mode = 'compiled' if compiled else 'eager'
                    print(f'{what}: measuring {name} ({mode}{turn}) in a fresh process',
                          flush=True)
                    row = run_in_child(what, name, args, compiled)
                runs.setdefault((name, compiled), []).append(row)
    rows = [median_round(rounds, time_key) if args.rounds > 1 else rounds[0]
            for rounds in runs.values()]
    add_compile_speedups(rows, [time_key])
    return add_ratios(rows, REFERENCE[what], time_key)


def median_round(rounds, time_key):
    """Of one model's rows from several rounds, the row of the median ``time_key`` (the lower of
    the two middle ones of an even number), with every successful round's time in round order
    in ``<time_key>_rounds``; the first failed row if no round succeeded."""
    measured = [row for row in rounds if 'error' not in row]
    if not measured:
        return rounds[0]
    median = dict(sorted(measured, key=lambda row: row[time_key])[(len(measured) - 1) // 2])
    median[f'{time_key}_rounds'] = [row[time_key] for row in measured]
    return median


def bench_compile_cache(names, args):
    """For each dense backbone: the compiled dense step's first call in a fresh process with an
    empty inductor cache (``cold_first_step_s``), then in another fresh process with the cache
    the first one filled (``warm_first_step_s``), as a resumed job or another rank finds it."""
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as cache_dir:
            env = dict(TORCHINDUCTOR_CACHE_DIR=cache_dir)
            print(f'compile_cache: {name}, cold then warm, in fresh processes', flush=True)
            cold, warm = (run_in_child('dense', name, args, True, env) for _ in range(2))
        row = dict(what='compile_cache', model=name, input=cold.get('input'))
        for label, measured in (('cold', cold), ('warm', warm)):
            if 'error' in measured:
                row[f'{label}_error'] = measured['error']
            else:
                row[f'{label}_first_step_s'] = measured['first_step_s']
        row['step_ms'] = warm.get('fwd_bwd_ms')
        if 'cold_first_step_s' in row and 'warm_first_step_s' in row:
            row['warm_vs_cold'] = round(row['warm_first_step_s'] / row['cold_first_step_s'], 3)
        rows.append(row)
    return rows


def row_or_error(what, name, args, measure_row, compiled=None):
    """``measure_row()``, or a row naming its error (out of memory, a model this timm lacks),
    so that one model does not end a run measuring several. A measured row is also printed as
    it comes (``measured: {...}``), so that a run cut short by a time limit keeps it in its log.
    """
    try:
        row = measure_row()
        print(f'measured: {json.dumps(row)}', flush=True)
        return row
    except Exception as error:  # noqa: BLE001  (reported in the row and the table)
        print(f'{what}: {name} failed: {error!r}', flush=True)
        if torch.device(args.device).type == 'cuda':
            torch.cuda.empty_cache()
        return dict(what=what, model=name, compiled=compiled,
                    error=f'{type(error).__name__}: {error}'[:200])


def add_ratios(rows, reference, time_key):
    """``time_vs_swin`` and ``mem_vs_swin`` on every row, from the rows' own (rounded) figures,
    against the reference model as shipped (eager, or compiled when only compiled rows ran);
    left out when the reference row is absent or failed."""
    candidates = [row for row in rows if row['model'] == reference]
    reference_row = next((row for row in candidates if not row.get('compiled')),
                         candidates[0] if candidates else None)
    if reference_row is None or 'error' in reference_row:
        return rows
    for row in rows:
        if 'error' in row:
            continue
        ratios = dict(time_vs_swin=round(row[time_key] / reference_row[time_key], 3),
                      mem_vs_swin=round(row['peak_gb'] / reference_row['peak_gb'], 3))
        ordered = {}
        for key, value in row.items():
            ordered[key] = value
            if key == time_key:
                ordered['time_vs_swin'] = ratios['time_vs_swin']
        ordered['mem_vs_swin'] = ratios['mem_vs_swin']
        row.clear()
        row.update(ordered)
    return rows


def parse_size(text):
    height, width = (int(side) for side in text.lower().split('x'))
    return height, width


def bench_flops(args):
    """GFLOPs of each backbone at each size (batch 1), a row per model; writes the plot."""
    from mmdsnet.analysis import quiet_flop_analyzer

    sizes = [parse_size(size) for size in args.flops_sizes]
    models = [(name, name, args.dsnet_options) for name in args.flops_models]
    if args.flops_global_cap:
        models.append((f'dsnet_small_cap{args.flops_global_cap}', 'dsnet_small',
                       {**args.dsnet_options, 'max_global_tokens': args.flops_global_cap}))
    rows = []
    for label, name, options in models:
        backbone = build_backbone(name, options)
        backbone.eval()  # not chained: mmdet's ResNet and Swin return None from train()
        row = dict(what='flops', model=label, params_m=count_params_m(backbone))
        uncounted = set()
        start = time.perf_counter()
        for height, width in sizes:
            with torch.no_grad():
                analyzer = quiet_flop_analyzer(backbone, (torch.randn(1, 3, height, width), ))
                row[f'gflops_{height}x{width}'] = round(analyzer.total() / 1e9, 3)
            # Operators that do multiply-adds but have no counter would make the count too low.
            uncounted.update(op for op in analyzer.unsupported_ops()
                             if any(word in op for word in ('attention', 'mm', 'conv', 'matmul')))
        row['count_s'] = round(time.perf_counter() - start, 1)
        print(f'flops: {label} counted in {row["count_s"]} s', flush=True)
        if uncounted:
            row['uncounted_ops'] = sorted(uncounted)
            print(f'flops: {label}: these operators were not counted: {sorted(uncounted)}')
        rows.append(row)
        del backbone
        gc.collect()
    plot_flops(rows, sizes, flops_plot_path(args))
    return rows


def flops_plot_path(args):
    if args.plot:
        return args.plot
    folder = os.path.dirname(args.out) if args.out else 'work_dirs'
    return os.path.join(folder, 'flops_vs_size.png')


def plot_flops(rows, sizes, path):
    """Log-log plot of GFLOPs against megapixels, one line per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    megapixels = [height * width / 1e6 for height, width in sizes]
    figure = Figure(figsize=(8, 5.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row in rows:
        gflops = [row[f'gflops_{height}x{width}'] for height, width in sizes]
        capped = '_cap' in row['model']
        axes.plot(megapixels, gflops, marker='o', linestyle='--' if capped else '-',
                  label=row['model'])
    axes.set_xscale('log')
    axes.set_yscale('log')
    axes.set_xticks(megapixels)
    axes.set_xticklabels([f'{height}x{width}\n{mp:.2g} MP'
                          for (height, width), mp in zip(sizes, megapixels)])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel('input size (H x W, megapixels), batch 1')
    axes.set_ylabel('GFLOPs (MMEngine counter: multiply-adds)')
    axes.set_title('Backbone FLOPs versus input size')
    axes.grid(True, which='both', alpha=0.3)
    axes.legend()
    figure.tight_layout()
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, dpi=120)
    print(f'flops: plot written to {path}')


def machine(args):
    info = dict(device=args.device, torch=torch.__version__, python=platform.python_version(),
                cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                threads=torch.get_num_threads())
    try:
        with open('/proc/meminfo') as file:
            info['memory_gb'] = round(int(file.readline().split()[1]) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    if torch.device(args.device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name()
    return info


def settings(args):
    return {key: value for key, value in vars(args).items() if key not in ('out', 'worker')}


def load_average():
    """The machine's 1-, 5- and 15-minute load averages (``uptime``'s), or None where unknown."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def write_report(args, rows, command, load_at_start):
    """The command line, the machine (with its load averages at the start and at the end of
    the run: other work on the cores slows the steps), the settings and the result rows as JSON,
    to ``--out`` if given."""
    if args.out:
        info = dict(machine(args), load_avg_start=load_at_start, load_avg_end=load_average())
        with open(args.out, 'w') as file:
            json.dump(dict(command=command, machine=info, settings=settings(args),
                           results=rows), file, indent=2)


def print_table(rows):
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    widths = {key: max(len(key), *(len(str(row.get(key, ''))) for row in rows)) for key in columns}
    print('  '.join(key.ljust(widths[key]) for key in columns))
    for row in rows:
        print('  '.join(str(row.get(key, '')).ljust(widths[key]) for key in columns))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    load_at_start = load_average()
    args = parse_args(argv)
    if args.worker:
        worker(args.worker)
        return []
    timer = Timer(args.device, args.warmup, args.repeats)
    tables = []
    if 'classification' in args.what:
        tables.append(add_compile_speedups([
            row_or_error('classification', name, args,
                         lambda name=name, compiled=compiled: bench_classification(
                             name, args, timer, compiled), compiled)
            for name in args.models or default_models() for compiled in compile_modes(args)
        ], ['infer_ms', 'train_ms']))
    if 'dense' in args.what:
        tables.append(bench_isolated('dense', args.dense_models, args))
    if 'detector' in args.what:
        tables.append(bench_isolated('detector', args.det_models, args))
    if 'segmentor' in args.what:
        tables.append(bench_isolated('segmentor', args.seg_models, args))
    if 'compile_cache' in args.what:
        tables.append(bench_compile_cache(args.dense_models, args))
    if 'flops' in args.what:
        args.plot = flops_plot_path(args)
        tables.append(bench_flops(args))
    rows = []
    for table in tables:
        print_table(table)
        print()
        rows += table
    command = shlex.join(['python', os.path.relpath(__file__, REPO_ROOT), *argv])
    write_report(args, rows, command, load_at_start)
    return rows


if __name__ == '__main__':
    main()
