"""mmdsnet: DSNet (Dual-Stream Network, NeurIPS 2021) for MMPretrain, MMDetection and
MMSegmentation.

Importing the package, in this order:

1. applies the version shims that the upstream releases need here (:mod:`mmdsnet.compat`);
2. registers the models in MMPretrain's and MMDetection's registries (and MMSegmentation's, where
   it is installed; its datasets are in :mod:`mmdsnet.datasets.checked_ade20k`, which the
   segmentation configs import), and the ImageNet models by name in MMPretrain's model index
   (:mod:`mmdsnet.model_index`);
3. makes MMEngine read local and http(s) weight files safely, converting the public releases'
   files in memory (:func:`mmdsnet.models.backbones.dsnet_weights.register_weights_loader`),
   and write checkpoints atomically with a checksum (:mod:`mmdsnet.engine.checkpoint_files`);
4. teaches MMEngine's FLOP counter DSNet's fused attention (:mod:`mmdsnet.analysis`).
"""
from . import compat
from .version import __version__

compat.apply()

from . import analysis, model_index  # noqa: E402
from .datasets import CheckedCocoDataset  # noqa: E402
from .engine import FiniteLossHook, RNGStateHook  # noqa: E402
from .engine.checkpoint_files import use_for_mmengine_checkpoints  # noqa: E402
from .models import DSNet  # noqa: E402  (registration needs the shims applied first)
from .models.backbones.dsnet_weights import register_weights_loader  # noqa: E402

model_index.register_models()
register_weights_loader()
use_for_mmengine_checkpoints()
analysis.register_flop_handles()

__all__ = ['CheckedCocoDataset', 'DSNet', 'FiniteLossHook', 'RNGStateHook', '__version__']
