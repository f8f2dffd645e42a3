"""Version shims: what the last OpenMMLab releases need to run on torch 2.1 to today's, numpy 1
and 2, any setuptools and any transformers.

mmengine 0.10.7, mmcv 2.1.0, mmpretrain 1.2.0 and mmdet 3.3.0 predate torch 2.6, numpy 2 and
setuptools 81. Each module here fixes one failure, says which versions need it and names the
test under ``tests/compat/`` that reproduces the failure without it; each applies only where
its failure exists, and changes nothing beyond it:

====================================  ==========================================================
module                                failure, and where
====================================  ==========================================================
torch_weights_only                    Runner checkpoints refused (torch >= 2.6); crafted
                                      pickles run their code (torch < 2.6)
torch_compiler_api                    ``torch.compiler.is_compiling`` missing (torch < 2.3)
numpy_core_move                       ``numpy.core`` renamed ``numpy._core`` (numpy 2) inside
                                      pickled weight files
mmengine_without_pkg_resources        ``mmdet::`` config bases (no ``pkg_resources``)
mmcv_hue_on_numpy2                    negative hue shifts raise ``OverflowError`` (numpy >= 2)
mmpretrain_beside_new_transformers    ``import mmpretrain.models`` fails (transformers >= 4.52)
mmengine_cpu_launcher                 ``--launcher pytorch`` without a GPU
torch_onnx_export                     attention with a scale does not export (torch < 2.2);
                                      the dynamo exporter by default (torch >= 2.9)
====================================  ==========================================================

:func:`apply` is called once by ``import mmdsnet``, before anything imports MMEngine's or
mmpretrain's models; the other modules are used where their names are needed.
"""
from mmdsnet.requirements import require_importable

# Before anything below fails on the first missing or too old package: names all of them.
require_importable()

from . import (mmcv_hue_on_numpy2, mmengine_without_pkg_resources,  # noqa: E402
               mmpretrain_beside_new_transformers)


def apply() -> None:
    """Apply the fixes that patch the upstream packages where their failure exists; safe to
    call again."""
    mmengine_without_pkg_resources.apply()
    mmcv_hue_on_numpy2.apply()
    mmpretrain_beside_new_transformers.apply()
