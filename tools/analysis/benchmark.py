"""Throughput and peak memory of DSNet beside its peers, measured in one run.

Three measurements:

- ``classification``: inference (forward, no grad) and a training step (forward, backward,
  AdamW step) of the 1000-class classifier at ``--size``, for DSNet tiny/small/base and, when timm
  is installed, resnet50, swin_tiny_patch4_window7_224, pvt_v2_b2, convnext_tiny and
  deit_small_patch16_224;
- ``dense``: backbone forward + backward at ``--dense-batch`` x 3 x 800 x 1344 (detection input);
- ``detector``: one Mask R-CNN FPN training step (mixed precision, AdamW) at 1333 x 800 with
  DSNet-S beside mmdet's Swin-T and ResNet-50 configs;
- ``resize``: the global stream's bilinear resizes in each DSNet-S stage at ``--batch`` x
  ``--size``, as the block computes them beside ``F.interpolate`` on the releases' NCHW maps.

Each figure is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones, timed with
CUDA events on a GPU. Prints a table and writes JSON (``--out``)::

    python tools/analysis/benchmark.py --device cuda --dtype bf16 --batch 256 \
        --train-batch 128 --channels-last --out work_dirs/benchmark.json
"""
import argparse
import copy
import json
import platform
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn as nn
from mmengine.config import DictAction

import mmdsnet  # noqa: F401  (registers DSNet, applies the compat fixes)

DSNET_ARCHS = ('tiny', 'small', 'base')
TIMM_PEERS = ('resnet50', 'swin_tiny_patch4_window7_224', 'pvt_v2_b2', 'convnext_tiny',
              'deit_small_patch16_224')
DETECTOR_CONFIGS = {
    'mask_rcnn_dsnet_small': 'configs/mask_rcnn_dsnet_small_coco.py',
    'mask_rcnn_swin_tiny': 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'mask_rcnn_r50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--what', nargs='+', default=['classification', 'dense'],
                        choices=['classification', 'dense', 'detector', 'resize'])
    parser.add_argument('--models', nargs='+', default=None,
                        help='classification models (default: DSNet archs + installed peers); '
                        'dsnet_<arch> or a timm model name')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='fp32', choices=DTYPES,
                        help='autocast dtype (fp32 = no autocast)')
    parser.add_argument('--batch', type=int, default=256, help='inference batch')
    parser.add_argument('--train-batch', type=int, default=128, help='training-step batch')
    parser.add_argument('--size', type=int, default=224, help='classification image side')
    parser.add_argument('--dense-batch', type=int, default=2)
    parser.add_argument('--dense-size', type=int, nargs=2, default=[800, 1344],
                        metavar=('H', 'W'))
    parser.add_argument('--det-size', type=int, nargs=2, default=[800, 1333],
                        metavar=('H', 'W'), help='detector input (2 images)')
    parser.add_argument('--dsnet-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE',
                        help='DSNet constructor arguments, e.g. channels_last=False')
    parser.add_argument('--deploy', action='store_true',
                        help='time DSNet inference with its BatchNorms folded '
                        '(switch_to_deploy); training steps use the unfolded model')
    parser.add_argument('--channels-last', action='store_true',
                        help='convert every model and input to channels_last (DSNet already '
                        'runs channels_last inside unless --dsnet-options channels_last=False)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--skip-train', action='store_true', help='inference only')
    parser.add_argument('--profile', action='store_true',
                        help='also profile 3 inference batches of each classifier and print the '
                        'operators that take the most time')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


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


def autocast(args):
    if args.dtype == 'fp32':
        return nullcontext()
    return torch.autocast(device_type=torch.device(args.device).type, dtype=DTYPES[args.dtype])


def build_in_scope(scope, cfg):
    """Build a model from ``scope``'s registry, whatever the process's default scope is."""
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


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


def default_models():
    models = [f'dsnet_{arch}' for arch in DSNET_ARCHS]
    try:
        import timm  # noqa: F401
    except ImportError:
        return models
    return models + list(TIMM_PEERS)


def prepare(model, args):
    model = model.to(args.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if args.compile else model


def make_images(batch, height, width, args):
    images = torch.randn(batch, 3, height, width, device=args.device)
    return images.to(memory_format=torch.channels_last) if args.channels_last else images


def bench_classification(name, args, timer):
    classifier = build_classifier(name, args.dsnet_options)
    params = sum(p.numel() for p in classifier.parameters())
    row = dict(what='classification', model=name, params_m=round(params / 1e6, 3))

    model = prepare(classifier, args).eval()
    inference_model = model
    if args.deploy and name.startswith('dsnet_'):
        deployed = copy.deepcopy(classifier)
        deployed.model.backbone.switch_to_deploy()
        inference_model = prepare(deployed, args)
    images = make_images(args.batch, args.size, args.size, args)
    reset_peak_memory(args.device)

    def infer():
        with torch.no_grad(), autocast(args):
            inference_model(images)

    seconds = timer(infer)
    if args.profile:
        print_profile(name, infer, args)
    row.update(infer_batch=args.batch, infer_img_s=round(args.batch / seconds, 1),
               infer_ms=round(seconds * 1000, 2), infer_peak_gb=peak_memory_gb(args.device))
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

    seconds = timer(train_step)
    row.update(train_batch=args.train_batch, train_img_s=round(args.train_batch / seconds, 1),
               train_ms=round(seconds * 1000, 2), train_peak_gb=peak_memory_gb(args.device))
    return row


def print_profile(name, step, args):
    from torch.profiler import ProfilerActivity, profile

    on_gpu = torch.device(args.device).type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as profiler:
        for _ in range(3):
            step()
        if on_gpu:
            torch.cuda.synchronize()
    sort_by = 'self_cuda_time_total' if on_gpu else 'self_cpu_time_total'
    print(f'{name}: inference profile, 3 batches of {args.batch}')
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=12))


def bench_dense(args, timer):
    backbone = prepare(
        build_in_scope('mmdet', dict(type='DSNet', arch='small', out_indices=(0, 1, 2, 3),
                                     **args.dsnet_options)),
        args).train()
    height, width = args.dense_size
    images = make_images(args.dense_batch, height, width, args)
    reset_peak_memory(args.device)

    def step():
        with autocast(args):
            loss = sum(out.float().mean() for out in backbone(images))
        loss.backward()

    seconds = timer(step)
    return dict(what='dense', model='dsnet_small backbone',
                input=f'{args.dense_batch}x3x{height}x{width}',
                fwd_bwd_ms=round(seconds * 1000, 2),
                peak_gb=peak_memory_gb(args.device))


def bench_resize(args, timer):
    """Per stage: the downsampling of the global channels (a channel slice of the stage map) and
    the upsampling back, in the releases' form (NCHW maps, ``F.interpolate``) and in the
    block's (channels-last slice, :func:`resize_bilinear`; the tokens viewed as a map)."""
    from mmdsnet.models import DSNet
    from mmdsnet.models.backbones.dsnet import map_to_tokens, resize_bilinear, tokens_to_map

    def interpolate(x, size):
        return nn.functional.interpolate(x, size=size, mode='bilinear', align_corners=False)

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


def bench_detector(name, config, args, timer):
    """One Mask R-CNN training step, as MMEngine's AmpOptimWrapper runs it."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import InstanceData

    cfg = get_config(config) if '::' in config else Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_in_scope('mmdet', cfg.model).to(args.device).train()
    optim_wrapper = build_optim_wrapper(
        model, dict(type='AmpOptimWrapper' if args.device != 'cpu' else 'OptimWrapper',
                    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05)))
    height, width = args.det_size
    generator = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width), scale_factor=(1., 1.),
                                             batch_input_shape=(height, width)))
        corners = torch.rand(8, 2, generator=generator) * torch.tensor([width / 2, height / 2])
        boxes = torch.cat([corners, corners + torch.tensor([width / 3, height / 3])], dim=1)
        masks = torch.zeros(8, height, width, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(bboxes=boxes.to(args.device),
                                           labels=torch.randint(0, 80, (8, )).to(args.device),
                                           masks=BitmapMasks(masks.numpy(), height, width))
        samples.append(sample)
    data = dict(inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)] * 2,
                data_samples=samples)
    reset_peak_memory(args.device)

    def step():
        model.train_step(data, optim_wrapper)

    seconds = timer(step)
    return dict(what='detector', model=name, input=f'2x3x{height}x{width}',
                step_ms=round(seconds * 1000, 2),
                peak_gb=peak_memory_gb(args.device))


def machine(args):
    info = dict(device=args.device, torch=torch.__version__, python=platform.python_version(),
                cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    if torch.device(args.device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name()
    return info


def print_table(rows):
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    widths = {key: max(len(key), *(len(str(row.get(key, ''))) for row in rows)) for key in columns}
    print('  '.join(key.ljust(widths[key]) for key in columns))
    for row in rows:
        print('  '.join(str(row.get(key, '')).ljust(widths[key]) for key in columns))


def main(argv=None):
    args = parse_args(argv)
    timer = Timer(args.device, args.warmup, args.repeats)
    rows = []
    if 'classification' in args.what:
        rows += [bench_classification(name, args, timer)
                 for name in args.models or default_models()]
    if 'dense' in args.what:
        rows.append(bench_dense(args, timer))
    if 'resize' in args.what:
        rows += bench_resize(args, timer)
    if 'detector' in args.what:
        rows += [bench_detector(name, config, args, timer)
                 for name, config in DETECTOR_CONFIGS.items()]
    settings = {key: value for key, value in vars(args).items() if key != 'out'}
    print_table(rows)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(machine=machine(args), settings=settings, results=rows), file, indent=2)
    return rows


if __name__ == '__main__':
    main()
