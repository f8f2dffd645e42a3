"""mmpretrain 1.2.0 beside transformers >= 4.52: its multimodal models switched off.

Failure: transformers 4.52 moved what mmpretrain 1.2.0's multimodal models import, so ``import
mmpretrain.models`` fails (``TypeError: NoneType takes no arguments``) wherever a recent
transformers is installed. Needed on: transformers >= 4.52. Reproduced by
``tests/compat/test_mmpretrain_beside_new_transformers.py``.
"""
import importlib.abc
import importlib.machinery
import sys

from mmdsnet.requirements import installed_version, release

#: transformers 4.52 moved what mmpretrain 1.2.0's multimodal models import.
TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL = (4, 52)


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


def apply() -> None:
    """Set mmpretrain's ``WITH_MULTIMODAL`` to False beside a recent transformers."""
    version = installed_version('transformers')
    if version is None or release(version)[:2] < TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL:
        return
    if _MultimodalGate.MODULE in sys.modules:
        # Imported already (e.g. by ``mmpretrain.apis``): the flag still counts as long as
        # ``mmpretrain.models`` is not imported yet.
        sys.modules[_MultimodalGate.MODULE].WITH_MULTIMODAL = False
    elif not any(isinstance(finder, _MultimodalGate) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MultimodalGate())
