"""MMEngine without ``pkg_resources``: its packages looked up with importlib instead.

Failure: mmengine 0.10.7 resolves ``mmdet::`` / ``mmpretrain::`` config bases with
``pkg_resources``, which setuptools deprecated and then removed (and which a Python without
setuptools lacks): ``Config.fromfile`` fails with ``ModuleNotFoundError: No module named
'pkg_resources'``. Needed on: any mmengine 0.10 where ``pkg_resources`` cannot be imported.
Reproduced by ``tests/compat/test_mmengine_without_pkg_resources.py``.
"""
import importlib.metadata
import importlib.util
import os.path as osp


def pkg_resources_missing() -> bool:
    """Whether ``pkg_resources`` cannot be imported (setuptools without it, or none at all)."""
    return importlib.util.find_spec('pkg_resources') is None


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


def apply() -> None:
    """Give MMEngine :func:`is_installed` and :func:`get_installed_path` where
    ``pkg_resources`` is missing: the same answers, through importlib."""
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
