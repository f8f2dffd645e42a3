"""mmcv's ``adjust_hue`` on numpy 2: negative hue shifts wrapped into uint8 explicitly.

Failure: mmcv 2.1.0 computes ``np.uint8(hue_factor * 255)``, which numpy 2 refuses for a
negative shift (``OverflowError: Python integer -25 out of bounds for uint8``), so every
negative hue shift of ``ColorJitter``/RandAugment crashed. Needed on: numpy >= 2 with mmcv 2.1.
Reproduced by ``tests/compat/test_mmcv_hue_on_numpy2.py``.
"""
import numpy as np

from .versions import NUMPY

#: numpy 2 raises OverflowError for np.uint8(-25); numpy 1 wrapped it modulo 256.
NUMPY_REFUSES_NEGATIVE_UINT8 = NUMPY >= (2, 0)


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


def apply() -> None:
    """Replace mmcv's ``adjust_hue`` on numpy 2."""
    if not NUMPY_REFUSES_NEGATIVE_UINT8:
        return
    import mmcv
    import mmcv.image
    import mmcv.image.photometric
    for module in (mmcv, mmcv.image, mmcv.image.photometric):
        module.adjust_hue = adjust_hue
