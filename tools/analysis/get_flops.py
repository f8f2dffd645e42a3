"""FLOPs and parameters of a classification or detection config's model, without any dataset.

    python tools/analysis/get_flops.py CONFIG [--shape H [W]] [--cfg-options KEY=VALUE ...]

Only the config's ``model`` is built: no data loader (MMDetection's own ``get_flops.py`` builds
the COCO loader first and fails without the images) and no checkpoint (``init_weights`` is not
called, so ``init_cfg`` is never read; FLOPs do not depend on the weights). MMEngine's counter
(what ``mmengine.analysis.get_model_complexity_info`` reports; one multiply-add counts one, and
``import mmdsnet`` lets it count DSNet's fused attention) runs on one random image of ``--shape``
(default 224 x 224 for classifiers, 800 x 1333 for detectors), padded up to a multiple of the data
preprocessor's ``pad_size_divisor`` where it has one, as real images are.

What is counted is the model's ``extract_feat``, the backbone and the neck, for classifiers and
detectors alike, as MMPretrain's ``get_flops.py`` does. The heads are left out: a classifier's
linear head adds 0.5 M multiply-adds, and a detector's RoI heads scale with the number of
proposals that survive NMS, which depends on the weights and the image, so it is no property of
the config. Parameters are those of the whole model.
"""
import argparse
import math

# First: registers DSNet and the FLOP handle, and its compat fixes precede mmengine's imports.
import mmdsnet  # noqa: F401  isort:skip
import torch
from mmengine.analysis import parameter_count
from mmengine.config import DictAction
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from mmdsnet.analysis import quiet_flop_analyzer
from mmdsnet.launch import load_config

# The default input size (H, W) per config scope: COCO's test scale for detectors, else 224.
DEFAULT_SHAPES = {'mmdet': (800, 1333)}
DEFAULT_SHAPE = (224, 224)


class FeatureExtractor(nn.Module):
    """The model's ``extract_feat`` (backbone and neck) as a forward, for the tracer."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor):
        return self.model.extract_feat(inputs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='SIDE',
                        help='input size H W (one value: a square); default 224 224 for '
                        'classifiers, 800 1333 for detectors')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. model.backbone.arch=small')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one side, got {len(args.shape)} values')
    return args


def build_model(cfg) -> nn.Module:
    """``cfg.model`` from the registries of the config's ``default_scope``, in eval mode."""
    if 'model' not in cfg:
        raise ValueError(f'{cfg.filename} has no `model` entry to count')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(cfg.model)
    if not hasattr(model, 'extract_feat'):
        raise ValueError(f'{cfg.filename}: {type(model).__name__} has no extract_feat method '
                         '(backbone and neck) to count; this tool counts classifiers and '
                         'detectors')
    return model.eval()


def input_shape(cfg, shape=None):
    """(1, 3, H, W): ``shape`` (or the default for the config's scope), each side padded up to
    the data preprocessor's ``pad_size_divisor``."""
    if not shape:
        shape = DEFAULT_SHAPES.get(cfg.get('default_scope'), DEFAULT_SHAPE)
    height, width = shape if len(shape) == 2 else (shape[0], shape[0])
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    return (1, 3, math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor)


def main(argv=None) -> dict:
    """Prints the counts; returns them (``flops``: multiply-adds of backbone and neck,
    ``params`` of the whole model, ``input_shape``, ``uncounted``: operators without a FLOP
    handle and how often they ran)."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg)
    shape = input_shape(cfg, args.shape)
    with torch.no_grad():
        analyzer = quiet_flop_analyzer(FeatureExtractor(model), (torch.rand(shape), ))
        flops = analyzer.total()
    params = parameter_count(model)['']
    uncounted = dict(sorted(analyzer.unsupported_ops().items()))
    print(f'Config: {args.config}\nInput shape: {shape}\n'
          f'FLOPs (backbone + neck): {flops / 1e9:.2f} G ({flops:,} multiply-adds)\n'
          f'Params (whole model): {params / 1e6:.2f} M ({params:,})')
    if uncounted:
        print('Operators without a FLOP handle, counted as 0: ' +
              ', '.join(f'{op} x{count}' for op, count in uncounted.items()))
    return dict(flops=flops, params=params, input_shape=shape, uncounted=uncounted)


if __name__ == '__main__':
    main()
