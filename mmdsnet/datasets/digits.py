"""scikit-learn's handwritten digits as an ImageNet-layout image folder: the embedded default data.

The 1,797 8x8 images of :func:`sklearn.datasets.load_digits` (UCI optical recognition of
handwritten digits, 16 grey levels) ship with scikit-learn, so they are real images that need no
download. They are upscaled (DSNet needs both image sides >= 32) and written in the layout that
MMPretrain's ``ImageNet`` dataset reads with ``split='train'`` / ``split='val'``::

    root/train/<digit>/<index>.png      root/meta/train.txt  ("<digit>/<index>.png <digit>")
    root/val/<digit>/<index>.png        root/meta/val.txt

so a config moves from ImageNet to digits by changing ``data_root`` and the classes alone. The
split is deterministic: every fifth image (index 0, 5, 10, ...) is held out for ``val``.
"""
import os
import os.path as osp
import shutil
import tempfile

import numpy as np
from PIL import Image

DIGITS_CLASSES = tuple(str(digit) for digit in range(10))
HOLDOUT_EVERY = 5


def digits_split(num_images: int):
    """Indices of the training and the held-out images."""
    indices = np.arange(num_images)
    held_out = indices % HOLDOUT_EVERY == 0
    return indices[~held_out], indices[held_out]


def write_digits(root: str, size: int = 32) -> str:
    """Write the digits under ``root`` unless they are there already.

    The folder is assembled beside ``root`` and renamed into place, so ``root`` either holds
    the complete set or does not exist, even if two processes write it at once.

    Args:
        root (str): Folder to create, e.g. ``'data/digits'``.
        size (int): Side of the written square images (bicubic upscaling of the 8x8 originals).
            Defaults to 32.

    Returns:
        str: ``root``.
    """
    if osp.isdir(root):
        return root
    from sklearn.datasets import load_digits
    digits = load_digits()
    # 16 grey levels, 0 = background; written dark on light like pen on paper.
    pixels = np.round(255 - digits.images * (255 / 16)).astype(np.uint8)
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.', dir=parent)
    try:
        os.makedirs(osp.join(staging, 'meta'))
        for split, indices in zip(('train', 'val'), digits_split(len(pixels))):
            lines = []
            for index in indices:
                label = int(digits.target[index])
                name = f'{label}/{index:04d}.png'
                path = osp.join(staging, split, name)
                os.makedirs(osp.dirname(path), exist_ok=True)
                Image.fromarray(pixels[index]).resize((size, size), Image.BICUBIC).save(path)
                lines.append(f'{name} {label}\n')
            with open(osp.join(staging, 'meta', f'{split}.txt'), 'w') as file:
                file.writelines(lines)
        try:
            os.rename(staging, root)
        except OSError:
            if not osp.isdir(root):  # lost the race only if another writer finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
