"""mmdsnet: DSNet (Dual-Stream Network, NeurIPS 2021) for MMPretrain and MMDetection.

Importing the package applies the compat fixes for today's torch/numpy/setuptools
(:mod:`mmdsnet.compat`), registers the models in MMPretrain's and MMDetection's registries and
the ImageNet models by name in MMPretrain's model index (:mod:`mmdsnet.model_index`), lets
MMEngine load the public releases' weight files as they are (``load_from_local_weights`` in
:mod:`mmdsnet.models.backbones.dsnet_convert`), and teaches MMEngine's FLOP counter DSNet's
fused attention (:mod:`mmdsnet.analysis`).
"""
from . import compat
from .version import __version__

compat.apply()

from . import analysis, model_index  # noqa: E402
from .datasets import CheckedCocoDataset  # noqa: E402
from .engine import FiniteLossHook, RNGStateHook  # noqa: E402
from .models import DSNet  # noqa: E402  (registration needs the fixes applied first)
from .models.backbones.dsnet_convert import register_weights_loader  # noqa: E402

analysis.register_flop_handles()
register_weights_loader()
model_index.register_models()

__all__ = ['CheckedCocoDataset', 'DSNet', 'FiniteLossHook', 'RNGStateHook', '__version__']
