"""Registration of mmdsnet modules into the downstream OpenMMLab registries.

MMPretrain, MMDetection and MMSegmentation each keep their own ``MODELS``
registry (all children of MMEngine's). A backbone must be found from any of
them, so every model class is registered into each registry whose package is
installed (MMSegmentation is optional: the ``seg`` extra).
"""
import importlib

_DOWNSTREAM_MODEL_REGISTRIES = ('mmpretrain.registry', 'mmdet.registry', 'mmseg.registry')


def _installed_model_registries():
    registries = []
    for module_name in _DOWNSTREAM_MODEL_REGISTRIES:
        try:
            registries.append(importlib.import_module(module_name).MODELS)
        except ImportError:
            continue
    return registries


def register_model(cls):
    """Class decorator: register ``cls`` as a model in every installed downstream registry."""
    for registry in _installed_model_registries():
        registry.register_module(module=cls)
    return cls
