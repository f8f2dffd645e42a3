"""mmdsnet: DSNet (Dual-Stream Network, NeurIPS 2021) for MMPretrain and MMDetection.

Importing the package applies the compat fixes for today's torch/numpy/setuptools
(:mod:`mmdsnet.compat`), registers the models in MMPretrain's and MMDetection's registries, and
teaches MMEngine's FLOP counter DSNet's fused attention (:mod:`mmdsnet.analysis`).
"""
from . import compat
from .version import __version__

compat.apply()

from . import analysis  # noqa: E402
from .datasets import CheckedCocoDataset  # noqa: E402
from .engine import FiniteLossHook, RNGStateHook  # noqa: E402
from .models import DSNet  # noqa: E402  (registration needs the fixes applied first)

analysis.register_flop_handles()

__all__ = ['CheckedCocoDataset', 'DSNet', 'FiniteLossHook', 'RNGStateHook', '__version__']
