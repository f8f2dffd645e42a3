"""The scripts under ``tools/``: as modules, for tests that call their functions, and as
processes, for tests that run them as a user does."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = REPO_ROOT / 'tools'


def load_tool(name, folder=''):
    """``tools/<folder>/<name>.py`` as a module. Scripts that import a sibling (``import
    benchmark``) find it through the ``pythonpath`` of setup.cfg's pytest section, as they find
    it in their own folder when they run."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / folder / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool(name):
    """The command that runs ``tools/<name>``."""
    return [sys.executable, str(TOOLS / name)]


def small_run(num_train, num_val, batch_size, max_epochs=2, *extra_options):
    """``--cfg-options`` for a short classification run: the quickstart warm-up takes epoch 1,
    so 2 epochs; ``extra_options`` are appended."""
    options = [f'train_cfg.max_epochs={max_epochs}', 'default_hooks.logger.interval=1']
    for loader, num_images in (('train_dataloader', num_train), ('val_dataloader', num_val)):
        options += [f'{loader}.dataset.indices={num_images}', f'{loader}.batch_size={batch_size}',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return ['--cfg-options', *options, *extra_options]


def run(args, cwd, timeout=600, **env):
    """Run a tool with one OpenMP thread (as torchrun gives each process): two threads on two
    cores stall whenever anything else runs, which made these runs 5-50x slower."""
    env = {**os.environ, 'PYTHONPATH': str(REPO_ROOT), 'OMP_NUM_THREADS': '1', **env}
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def eager_keys(config, scope):
    """The state-dict keys of ``config``'s model built eagerly in registry ``scope``: what a
    checkpoint of a compiled run must hold."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return set(MODELS.build(Config.fromfile(str(config)).model).state_dict())
