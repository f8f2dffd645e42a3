"""mmdsnet.compat.mmcv_hue_on_numpy2: mmcv's ``adjust_hue`` fails for negative shifts on
numpy 2 upstream (reproduced in a fresh interpreter), rotates the hue channel after
``import mmdsnet``, and matches upstream exactly where upstream works."""
import os

import numpy as np
import pytest

import mmdsnet  # noqa: F401  (applies the shims)
from mmdsnet.compat import mmcv_hue_on_numpy2 as shim


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
    not shim.NUMPY_REFUSES_NEGATIVE_UINT8,
    reason=f'numpy {np.__version__} < 2 wraps np.uint8(-25): mmcv\'s own adjust_hue works and '
    'the fix is not applied')


def test_hue_fix_applies_only_on_numpy2():
    import mmcv
    assert (mmcv.adjust_hue is shim.adjust_hue) == shim.NUMPY_REFUSES_NEGATIVE_UINT8


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
