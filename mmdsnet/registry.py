"""Registration of mmdsnet modules into the downstream OpenMMLab registries.

MMPretrain and MMDetection each keep their own ``MODELS`` registry (both
children of MMEngine's). A backbone must be found from either, so every model
class is registered into each registry whose package is installed.
"""
import importlib

_DOWNSTREAM_MODEL_REGISTRIES = ('mmpretrain.registry', 'mmdet.registry')


def _installed_model_registries():
    registries = []
    for module_name in _DOWNSTREAM_MODEL_REGISTRIES:
        try:
            registries.append(importlib.import_module(module_name).MODELS)
        except ImportError:
            continue
    return registries


def register_model(cls):
    """Class decorator: register ``cls`` as a model in MMPretrain and MMDetection."""
    for registry in _installed_model_registries():
        registry.register_module(module=cls)
    return cls
