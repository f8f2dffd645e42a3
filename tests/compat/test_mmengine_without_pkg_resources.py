"""mmdsnet.compat.mmengine_without_pkg_resources: mmengine's ``mmdet::`` config bases fail
without ``pkg_resources`` upstream (reproduced in a fresh interpreter that never imports mmdsnet)
and load after ``import mmdsnet``; the shim applies only where ``pkg_resources`` is missing."""
import pytest

import mmdsnet  # noqa: F401  (applies the shims)
from mmdsnet.compat import mmengine_without_pkg_resources as shim

MMDET_BASE_CONFIG = "_base_ = 'mmdet::_base_/default_runtime.py'\n"
WITHOUT_PKG_RESOURCES = (
    'import sys\n'
    "sys.modules['pkg_resources'] = None  # as on setuptools without pkg_resources\n")


@pytest.fixture
def mmdet_based_config(tmp_path):
    path = tmp_path / 'uses_mmdet_base.py'
    path.write_text(MMDET_BASE_CONFIG)
    return str(path)


def test_mmdet_base_config_needs_pkg_resources_upstream(mmdet_based_config, run_python):
    result = run_python(WITHOUT_PKG_RESOURCES + 'from mmengine.config import Config\n'
                        f'Config.fromfile({mmdet_based_config!r})\n')
    assert result.returncode != 0
    assert 'pkg_resources' in result.stderr


def test_pkg_resources_fix_applies_only_without_pkg_resources():
    import mmengine.utils.package_utils as package_utils
    applied = package_utils.get_installed_path is shim.get_installed_path
    assert applied == shim.pkg_resources_missing()


def test_mmdet_base_config_loads_without_pkg_resources(mmdet_based_config, run_python):
    result = run_python(WITHOUT_PKG_RESOURCES + 'import mmdsnet\n'
                        'from mmengine.config import Config\n'
                        f'cfg = Config.fromfile({mmdet_based_config!r})\n'
                        "print(cfg.default_scope)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'mmdet'
