"""Fixes for running the last OpenMMLab releases on torch 2.1 to today's, numpy 1 and 2, and any
setuptools.

mmengine 0.10.7, mmcv 2.1.0, mmpretrain 1.2.0 and mmdet 3.3.0 predate torch 2.6, numpy 2 and
setuptools 70. :func:`apply` is called once by ``import mmdsnet``; each fix below names the
failure it prevents and applies only where that failure exists (the conditions below), and
``tests/test_compat.py`` reproduces each failure without the fix. Nothing here changes behaviour
beyond the failure it repairs.
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os.path as osp
import sys

from .requirements import require_importable

# Before anything below fails on the first missing or too old package: names all of them.
require_importable()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .checkpoint import load_torch_file, save_torch_file, write_bytes_atomically  # noqa: E402

# torch.load defaults to weights_only=True from torch 2.6 on, which refuses Runner checkpoints;
# before, it unpickles anything, so a crafted checkpoint runs its code. Either way MMEngine's
# loader needs replacing, on every torch.
TORCH_LOAD_DEFAULTS_TO_WEIGHTS_ONLY = torch.__version__ >= '2.6'
# numpy 2 raises OverflowError for np.uint8(-25); numpy 1 wrapped it modulo 256.
NUMPY_REFUSES_NEGATIVE_UINT8 = np.lib.NumpyVersion(np.__version__) >= '2.0.0'
# transformers 4.52 moved what mmpretrain 1.2.0's multimodal models import.
TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL = (4, 52)


def pkg_resources_missing():
    """Whether ``pkg_resources`` cannot be imported (setuptools without it, or none at all)."""
    return importlib.util.find_spec('pkg_resources') is None


def load_from_local(filename, map_location=None):
    """MMEngine's loader for local paths, through :func:`mmdsnet.checkpoint.load_torch_file`."""
    return load_torch_file(filename, map_location=map_location)


def _route_local_checkpoints_through_allowlist():
    """torch >= 2.6 loads with ``weights_only=True``, and a Runner checkpoint holds
    ``HistoryBuffer`` and numpy objects: ``--resume``, ``load_from`` and ``init_cfg`` Pretrained
    fail with ``Weights only load failed ... Unsupported global``. Older torch loads with
    ``weights_only=False``: a crafted checkpoint runs its code. Loading now keeps the rules of
    ``weights_only=True`` and adds exactly the allowlist of :mod:`mmdsnet.checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


def _write_local_files_atomically():
    """MMEngine writes checkpoints in place (``open(path, 'wb')``), so a job killed while saving
    leaves a truncated ``epoch_N.pth`` that ``--resume`` then picks up. Local writes now go to
    a temporary file that is renamed into place."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    def put(self, obj, filepath):
        write_bytes_atomically(obj, str(filepath))

    LocalBackend.put = put


def _record_checksums_in_checkpoints():
    """MMEngine's checkpoints hold nothing that tells a damaged file (bit rot, a truncated copy)
    from an intact one, so ``--resume`` or ``load_from`` could train on from garbage. Local
    checkpoints are now written by :func:`mmdsnet.checkpoint.save_torch_file`, which records
    their SHA-256; :func:`mmdsnet.checkpoint.load_torch_file` verifies it."""
    import mmengine.runner
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.fileio import LocalBackend, get_file_backend

    save_elsewhere = checkpoint_module.save_checkpoint

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        local = (file_client_args is None and not str(filename).startswith('pavi://')
                 and isinstance(get_file_backend(filename, backend_args=backend_args),
                                LocalBackend))
        if local:
            save_torch_file(checkpoint, str(filename))
        else:
            save_elsewhere(checkpoint, filename, file_client_args, backend_args)

    # the Runner and CheckpointHook call it through these names
    for module in (checkpoint_module, runner_module, mmengine.runner):
        module.save_checkpoint = save_checkpoint


def _module_of_distribution(package):
    try:
        top_level = importlib.metadata.distribution(package).read_text('top_level.txt')
    except importlib.metadata.PackageNotFoundError:
        return package
    return top_level.split()[0] if top_level else package.replace('-', '_')


def is_installed(package):
    """Whether ``package`` (a distribution or module name) can be imported."""
    try:
        return importlib.util.find_spec(_module_of_distribution(package)) is not None
    except (ImportError, ValueError):
        return False


def get_installed_path(package):
    """The directory of the module that distribution ``package`` installs."""
    spec = importlib.util.find_spec(_module_of_distribution(package))
    if spec is None:
        raise importlib.metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package, which has no single install path')
    return osp.dirname(spec.origin)


def _find_packages_without_pkg_resources():
    """mmengine resolves ``mmdet::`` / ``mmpretrain::`` config bases with ``pkg_resources``,
    which setuptools deprecates and has removed: ``Config.fromfile`` then fails with
    ``ModuleNotFoundError: No module named 'pkg_resources'``. Same answers via importlib."""
    if not pkg_resources_missing():
        return
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    for module in (config_module, hub_module, utils_module, package_utils):
        if hasattr(module, 'get_installed_path'):
            module.get_installed_path = get_installed_path
        if hasattr(module, 'is_installed'):
            module.is_installed = is_installed


def adjust_hue(img, hue_factor, backend=None):
    """mmcv 2.1.0's ``adjust_hue`` (same signature, backends and BGR order), with the hue shift
    wrapped into uint8 explicitly.

    mmcv computes ``np.uint8(hue_factor * 255)``, which numpy 2 refuses for a negative shift
    (``OverflowError: Python integer -25 out of bounds for uint8``), so every negative hue shift
    crashed. Numpy 1 wrapped it modulo 256; so does this.
    """
    import cv2
    from mmcv.image import io as image_io
    from PIL import Image
    backend = backend or image_io.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f"backend: {backend} is not supported. Supported backends are "
                         "'cv2', 'pillow'")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    shift = np.uint8(int(hue_factor * 255) % 256)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil_image = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        hue, saturation, value = pil_image.convert('HSV').split()
        hue = Image.fromarray(np.array(hue, dtype=np.uint8) + shift)
        rgb = Image.merge('HSV', (hue, saturation, value)).convert(pil_image.mode)
        return np.array(rgb, dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hue, saturation, value = cv2.split(cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL))
    hsv = cv2.merge([hue.astype(np.uint8) + shift, saturation, value])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def _hue_shift_on_numpy2():
    if not NUMPY_REFUSES_NEGATIVE_UINT8:
        return
    import mmcv
    import mmcv.image
    import mmcv.image.photometric
    for module in (mmcv, mmcv.image, mmcv.image.photometric):
        module.adjust_hue = adjust_hue


class _MultimodalGate(importlib.abc.MetaPathFinder):
    """transformers >= 4.52 moved what mmpretrain 1.2.0's multimodal models import, so
    ``import mmpretrain.models`` fails (``TypeError: NoneType takes no arguments``) wherever a
    recent transformers is installed. mmpretrain already knows how to run without them: its
    ``WITH_MULTIMODAL`` flag registers placeholders that ask for compatible dependencies. This
    finder sets that flag to False as mmpretrain's dependency module is first imported."""

    MODULE = 'mmpretrain.utils.dependency'

    def find_spec(self, fullname, path, target=None):
        if fullname != self.MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            module.WITH_MULTIMODAL = False

        spec.loader.exec_module = exec_module
        return spec


def _transformers_version():
    try:
        return tuple(int(part) for part in
                     importlib.metadata.version('transformers').split('.')[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def _skip_multimodal_models_on_new_transformers():
    version = _transformers_version()
    if version is None or version < TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL:
        return
    if _MultimodalGate.MODULE in sys.modules:
        # Imported already (e.g. by ``mmpretrain.apis``): the flag still counts as long as
        # ``mmpretrain.models`` is not imported yet.
        sys.modules[_MultimodalGate.MODULE].WITH_MULTIMODAL = False
    elif not any(isinstance(finder, _MultimodalGate) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MultimodalGate())


_applied = False


def apply():
    """Apply every fix once; safe to call again."""
    global _applied
    if _applied:
        return
    _route_local_checkpoints_through_allowlist()
    _write_local_files_atomically()
    _record_checksums_in_checkpoints()
    _find_packages_without_pkg_resources()
    _hue_shift_on_numpy2()
    _skip_multimodal_models_on_new_transformers()
    _applied = True
