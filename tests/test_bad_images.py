"""Bad and unusual image files in a data set: a clear error naming the file, or a documented
conversion; never a silently wrong image.

- corrupt or truncated JPEG: ``AssertionError: failed to load image: <path>`` (mmcv's loader),
  which stops training with the file named;
- grayscale, RGBA and 16-bit PNG: loaded as 3-channel 8-bit BGR (gray replicated, alpha
  dropped, 16-bit scaled by 1/257), as every OpenMMLab pipeline expects.
"""
import os

import cv2
import numpy as np
import pytest
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


@pytest.fixture(scope='module')
def train_pipeline():
    cfg = load_config(CONFIG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield Compose(cfg.train_dataloader.dataset.pipeline)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)


def run(pipeline, path):
    return pipeline(dict(img_path=str(path), gt_label=0))


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_broken_jpeg_names_the_file(train_pipeline, image, tmp_path, damage):
    path = tmp_path / f'{damage}.jpg'
    _, encoded = cv2.imencode('.jpg', image)
    data = encoded.tobytes()
    path.write_bytes(data[:len(data) // 2] if damage == 'truncated' else b'not an image')
    with pytest.raises(AssertionError, match=f'failed to load image: {path}'):
        run(train_pipeline, path)


def test_grayscale_png_becomes_three_equal_channels(train_pipeline, image, tmp_path):
    path = tmp_path / 'gray.png'
    cv2.imwrite(str(path), image[..., 0])
    inputs = run(train_pipeline, path)['inputs']
    assert inputs.shape == (3, 32, 32)
    assert (inputs[0] == inputs[1]).all() and (inputs[1] == inputs[2]).all()


def test_rgba_png_drops_alpha(train_pipeline, image, tmp_path):
    path = tmp_path / 'rgba.png'
    cv2.imwrite(str(path), np.dstack([image, np.full(image.shape[:2], 7, np.uint8)]))
    assert run(train_pipeline, path)['inputs'].shape == (3, 32, 32)
    from mmcv.transforms import LoadImageFromFile
    np.testing.assert_array_equal(LoadImageFromFile()(dict(img_path=str(path)))['img'], image)


def test_16bit_png_is_scaled_to_8bit(tmp_path, image):
    from mmcv.transforms import LoadImageFromFile
    path = tmp_path / 'deep.png'
    cv2.imwrite(str(path), image.astype(np.uint16) * 257)
    loaded = LoadImageFromFile()(dict(img_path=str(path)))['img']
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, image)
