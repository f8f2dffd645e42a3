"""Each compat fix: the original failure, reproduced without ``import mmdsnet``, and the fix.

The "without" halves run in a fresh interpreter that never imports mmdsnet, so they show the
upstream releases failing on the torch / numpy / setuptools installed; if upstream ever stops
failing, they fail and the fix can go. A failure that does not exist on the stack installed
(e.g. the numpy 2 one under numpy 1) skips, saying so, and a test checks that its fix is then
not applied.
"""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdsnet  # noqa: F401  (applies the fixes)
from mmdsnet import compat
from mmdsnet.checkpoint import TORCH_TAKES_NAMED_SAFE_GLOBALS, allowlist_pickle_module

# --------------------------------------------------------------------------- checkpoints


class ToyClassifier(BaseModel):
    """Small enough to train for 3 epochs in a second."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.classifier(self.features(torch.stack(inputs)))
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, torch.stack(labels))}
        return logits


class GeneratedImages(torch.utils.data.Dataset):

    def __init__(self, num_images=8):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(num_images, 3, 16, 16, generator=generator)
        self.labels = torch.arange(num_images) % 2

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return dict(inputs=self.images[index], labels=self.labels[index])


def make_runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=ToyClassifier(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=GeneratedImages(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], gamma=0.5),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs)


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    make_runner(work_dir, max_epochs=2).train()
    return work_dir


@pytest.mark.skipif(not compat.TORCH_LOAD_DEFAULTS_TO_WEIGHTS_ONLY,
                    reason=f'torch {torch.__version__} < 2.6 does not load with weights_only=True '
                    'by default; the failure there is test_mmengine_runs_checkpoint_code_upstream_'
                    'on_old_torch')
def test_runner_checkpoint_needs_more_than_plain_weights_only(trained_work_dir, run_python):
    result = run_python(
        'import torch\n'
        f'torch.load({str(trained_work_dir / "epoch_2.pth")!r})\n')
    assert result.returncode != 0
    assert 'Weights only load failed' in result.stderr
    assert 'HistoryBuffer' in result.stderr or 'numpy' in result.stderr


@pytest.mark.skipif(compat.TORCH_LOAD_DEFAULTS_TO_WEIGHTS_ONLY,
                    reason=f'torch {torch.__version__} >= 2.6 refuses the crafted checkpoint '
                    'itself; the failure there is test_runner_checkpoint_needs_more_than_plain_'
                    'weights_only')
def test_mmengine_runs_checkpoint_code_upstream_on_old_torch(crafted_pth, marker, run_python):
    result = run_python('import torch.nn as nn\n'
                        'from mmengine.runner import load_checkpoint\n'
                        f'load_checkpoint(nn.Linear(2, 2), {crafted_pth!r})\n')
    assert marker.exists(), result.stderr


def test_runner_resumes_from_epoch_2_to_3_under_weights_only(trained_work_dir, monkeypatch):
    loads = []
    original_load = torch.load

    def spy_load(*args, **kwargs):
        loads.append((kwargs.get('weights_only'), kwargs.get('pickle_module')))
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)
    runner = make_runner(trained_work_dir, max_epochs=3, resume=True)
    runner.train()

    # weights_only=True with the allowlist, or (torch < 2.6) the unpickler that enforces it
    expected = (True, None) if TORCH_TAKES_NAMED_SAFE_GLOBALS else (None, allowlist_pickle_module)
    assert loads and all(load == expected for load in loads)
    assert runner.epoch == 3
    iters_per_epoch = len(GeneratedImages()) // 4
    assert runner.iter == 3 * iters_per_epoch
    # AdamW's step count continues from the checkpoint instead of restarting at zero.
    steps = {int(state['step']) for state in runner.optim_wrapper.optimizer.state.values()}
    assert steps == {3 * iters_per_epoch}
    assert runner.optim_wrapper.get_lr()['lr'] == [pytest.approx(5e-4)]
    assert (trained_work_dir / 'epoch_3.pth').is_file()


def test_load_from_restores_weights_exactly(trained_work_dir, tmp_path):
    runner = make_runner(tmp_path, max_epochs=1, load_from=str(trained_work_dir / 'epoch_2.pth'))
    runner.load_or_resume()
    saved = torch.load(trained_work_dir / 'epoch_2.pth', weights_only=False)['state_dict']
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, saved[name]), name


# --------------------------------------------------------------------------- pkg_resources

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
    applied = package_utils.get_installed_path is compat.get_installed_path
    assert applied == compat.pkg_resources_missing()


def test_mmdet_base_config_loads_without_pkg_resources(mmdet_based_config, run_python):
    result = run_python(WITHOUT_PKG_RESOURCES + 'import mmdsnet\n'
                        'from mmengine.config import Config\n'
                        f'cfg = Config.fromfile({mmdet_based_config!r})\n'
                        "print(cfg.default_scope)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'mmdet'


# --------------------------------------------------------------------------- hue on numpy 2


def saturated_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image[..., 0] = 255  # full saturation/value keeps the HSV round trip exact enough
    image[..., 2] = 0
    return image


def hue_channel(image):
    import cv2
    return cv2.cvtColor(image, cv2.COLOR_BGR2HSV_FULL)[..., 0].astype(int)


needs_numpy2 = pytest.mark.skipif(
    not compat.NUMPY_REFUSES_NEGATIVE_UINT8,
    reason=f'numpy {np.__version__} < 2 wraps np.uint8(-25): mmcv\'s own adjust_hue works and '
    'the fix is not applied')


def test_hue_fix_applies_only_on_numpy2():
    import mmcv
    assert (mmcv.adjust_hue is compat.adjust_hue) == compat.NUMPY_REFUSES_NEGATIVE_UINT8


@needs_numpy2
def test_negative_hue_shift_breaks_upstream_on_numpy2(run_python):
    result = run_python(
        'import numpy as np, mmcv\n'
        'image = np.zeros((4, 4, 3), np.uint8); image[..., 0] = 255\n'
        'mmcv.adjust_hue(image, -0.1)\n'
        'print("shifted")\n')
    assert result.returncode != 0 or 'shifted' not in result.stdout
    assert 'OverflowError' in result.stderr


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('hue_factor', [-0.5, -0.1, 0.1, 0.4])
def test_hue_shift_rotates_the_hue_channel(hue_factor, backend):
    import mmcv

    image = saturated_image()
    shifted = mmcv.adjust_hue(image, hue_factor, backend=backend)
    rotation = (hue_channel(shifted) - hue_channel(image)) % 256
    expected = int(hue_factor * 255) % 256
    circular_error = np.minimum(abs(rotation - expected), 256 - abs(rotation - expected))
    assert circular_error.max() <= 2
    assert shifted.dtype == image.dtype and shifted.shape == image.shape


@needs_numpy2
def test_positive_hue_shift_matches_upstream_exactly(run_python, tmp_path):
    import mmcv.image.photometric  # noqa: F401

    image = saturated_image()
    np.save(tmp_path / 'image.npy', image)
    result = run_python('import numpy as np, mmcv\n'
                        "np.save('upstream.npy', mmcv.adjust_hue(np.load('image.npy'), 0.3))\n")
    assert result.returncode == 0, result.stderr
    upstream = np.load(os.path.join(tmp_path, 'upstream.npy'))
    np.testing.assert_array_equal(mmcv.adjust_hue(image, 0.3), upstream)


# --------------------------------------------------------------------------- transformers

transformers_version = pytest.importorskip('importlib.metadata').version


def new_transformers_installed():
    try:
        major, minor = transformers_version('transformers').split('.')[:2]
    except Exception:
        return False
    return (int(major), int(minor)) >= (4, 52)


needs_new_transformers = pytest.mark.skipif(
    not new_transformers_installed(),
    reason='transformers >= 4.52 is not installed (tools/install.sh --tests installs it)')


@needs_new_transformers
def test_mmpretrain_does_not_import_beside_new_transformers_upstream(run_python):
    result = run_python('import mmpretrain.models\n')
    assert result.returncode != 0
    assert 'multimodal' in result.stderr


@needs_new_transformers
def test_mmpretrain_imports_beside_new_transformers(run_python):
    result = run_python('import mmdsnet\n'
                        'from mmpretrain.registry import MODELS\n'
                        'from mmpretrain.models import ImageClassifier\n'
                        "print(MODELS.get('DSNet').__name__)\n"
                        "MODELS.build(dict(type='Blip2Caption'))\n")
    assert result.stdout.strip() == 'DSNet', result.stderr
    # the multimodal models become mmpretrain's own placeholders that say what is missing
    assert result.returncode != 0 and 'multi-modal dependencies' in result.stderr


@needs_new_transformers
def test_mmpretrain_apis_imported_before_mmdsnet(run_python):
    result = run_python('from mmpretrain.apis import ImageClassificationInferencer\n'
                        'import mmdsnet\n'
                        'import mmpretrain.models\n'
                        "print('imported')\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'imported'
