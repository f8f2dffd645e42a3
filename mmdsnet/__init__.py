"""mmdsnet: DSNet (Dual-Stream Network, NeurIPS 2021) for MMPretrain and MMDetection.

Importing the package applies the compat fixes for today's torch/numpy/setuptools
(:mod:`mmdsnet.compat`) and registers the models in MMPretrain's and MMDetection's registries.
"""
from . import compat
from .version import __version__

compat.apply()

from .datasets import CheckedCocoDataset  # noqa: E402
from .engine import FiniteLossHook, RNGStateHook  # noqa: E402
from .models import DSNet  # noqa: E402  (registration needs the fixes applied first)

__all__ = ['CheckedCocoDataset', 'DSNet', 'FiniteLossHook', 'RNGStateHook', '__version__']
