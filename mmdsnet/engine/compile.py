"""``torch.compile`` of a model's backbone, for MMEngine's ``compile`` switch.

MMEngine 0.10 compiles the whole ``model.train_step``, the optimizer step included, which dynamo
cannot trace (``'UserDefinedDictVariable' object has no attribute 'items'`` in
``torch/optim/optimizer.py`` on torch 2.14, after minutes of compiling). What pays to compile is
the tensor program that dominates the step, the backbone: ``model.backbone`` of MMPretrain's
classifiers and of MMDetection's and MMSegmentation's models alike. The rest stays eager: the
necks and heads (a few operators each; their losses handle data samples, mmcv's RoI ops and
data-dependent control flow, and on torch 2.1 mmdet's FPN would compile again for every parity
of the image size) and the optimizer step. :class:`~mmdsnet.engine.hooks.CompileHook` applies
this to MMEngine's switch.

A compiled model keeps its parameters and state-dict keys (no ``_orig_mod.`` prefix), so its
checkpoints are eager checkpoints.
"""
import functools
import importlib.util
import inspect
import os
import os.path as osp
import shutil
import sys
from typing import Optional, Union

import torch
import torch._dynamo
import torch.nn as nn


def compile_options(compile_cfg: Union[bool, dict, None]) -> Optional[dict]:
    """MMEngine's ``compile`` value as ``torch.compile`` keyword arguments, or None when off.

    ``True`` means ``dict()``; a dict is checked against ``torch.compile``'s arguments here, so
    that a misspelled key fails before the model is built rather than at the first iteration.
    """
    if compile_cfg is None or compile_cfg is False:
        return None
    if compile_cfg is True:
        return {}
    if not isinstance(compile_cfg, dict):
        raise TypeError(f'compile must be True, False or a dict of torch.compile arguments, '
                        f'got {compile_cfg!r}')
    accepted = set(inspect.signature(torch.compile).parameters) - {'model'}
    unknown = sorted(set(compile_cfg) - accepted)
    if unknown:
        raise ValueError(f'compile={compile_cfg!r}: torch.compile takes no {unknown}; its '
                         f'arguments are {sorted(accepted)}')
    return dict(compile_cfg)


def cannot_compile_reason(compile_kwargs: dict, device: torch.device) -> Optional[str]:
    """Why ``torch.compile`` with these arguments cannot work on ``device`` here, or None.

    Checked before training, so that a machine without a C++ compiler (inductor on CPU), without
    Triton (inductor on CUDA) or a Python that dynamo does not support warns and trains eagerly
    instead of failing at the first iteration after minutes of tracing.
    """
    if not torch._dynamo.is_dynamo_supported():
        return (f'torch {torch.__version__} cannot compile on Python '
                f'{sys.version.split()[0]} / {sys.platform}')
    if compile_kwargs.get('backend', 'inductor') != 'inductor':
        return None
    if device.type == 'cpu':
        compilers = [name for name in _inductor_cxx_candidates() if shutil.which(name)]
        if not compilers:
            return (f'inductor needs a C++ compiler for the CPU and none of '
                    f'{_inductor_cxx_candidates()} is on PATH (install g++, or set CXX)')
    elif device.type == 'cuda' and importlib.util.find_spec('triton') is None:
        return 'inductor needs Triton for CUDA and it is not installed (pip install triton)'
    return None


def _inductor_cxx_candidates():
    from torch._inductor import config
    return [name for name in config.cpp.cxx if name]


def use_persistent_caches(cache_dir: Optional[str] = None) -> str:
    """Point inductor's caches at one directory that outlives the job, unless the user did.

    Inductor's FX-graph and autotuning caches (and Triton's kernels) go to
    ``$TORCHINDUCTOR_CACHE_DIR``, by default a folder under ``/tmp`` that is often per job and
    per node on a cluster. Under ``~/.cache/mmdsnet/inductor`` (or ``$XDG_CACHE_HOME``) every
    rank, and a resumed or preempted job, finds the kernels compiled before and skips most of
    the compile. Returns the directory in use.
    """
    if cache_dir is None:
        cache_dir = os.environ.get('TORCHINDUCTOR_CACHE_DIR')
    if cache_dir is None:
        base = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
        cache_dir = osp.join(base, 'mmdsnet', 'inductor')
    os.makedirs(cache_dir, exist_ok=True)
    os.environ['TORCHINDUCTOR_CACHE_DIR'] = cache_dir
    from torch._inductor import config
    if hasattr(config, 'fx_graph_cache'):  # off by default in older torch; absent in 2.1
        config.fx_graph_cache = True
    return cache_dir


def compile_backbone(model: nn.Module, compile_kwargs: dict) -> None:
    """Compile ``model.backbone``'s forward in place with ``torch.compile(**compile_kwargs)``.

    The compiled function takes the backbone as an argument (``functools.partial``), so that a
    deep copy of the model (MMEngine's EMA) calls it with the copy, and nothing else about the
    model changes: its modules, parameters and state-dict keys are the eager ones.

    The first batch shape compiles a graph for that shape. Once a batch of another size, height
    or width comes (detection pads each batch to its own size; an epoch's last batch may be
    smaller), all three are marked dynamic, so the second compile serves every later shape;
    dynamo left alone would mark only the dimension that changed, and compile again at the
    first portrait batch after landscape ones, or at the last batch of the epoch. A batch of
    one image is the exception: dynamo specialises sizes of 1, so it compiles once more.
    """
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f'compile: {type(model).__name__} has no backbone to compile '
                        '(MMPretrain classifiers and MMDetection/MMSegmentation models have '
                        'one); train it with compile=False')
    compiled = torch.compile(type(backbone).forward, **compile_kwargs)
    first_shape = []

    def compiled_forward(backbone, images, *args, **kwargs):
        if not first_shape:
            first_shape.append(images.shape)
        elif images.shape != first_shape[0]:
            for dim in (0, images.dim() - 2, images.dim() - 1):
                torch._dynamo.maybe_mark_dynamic(images, dim)
        return compiled(backbone, images, *args, **kwargs)

    backbone.forward = functools.partial(compiled_forward, backbone)


def is_compiled(model: nn.Module) -> bool:
    """Whether :func:`compile_backbone` compiled this model (or the model it copies)."""
    backbone = getattr(model, 'backbone', None)
    return isinstance(vars(backbone).get('forward') if backbone is not None else None,
                      functools.partial)
