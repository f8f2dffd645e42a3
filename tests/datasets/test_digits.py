"""The embedded digits folder: ImageNet layout, deterministic held-out split, real pixels."""
import os

import numpy as np
from mmengine.registry import init_default_scope
from PIL import Image
from sklearn.datasets import load_digits

from mmdsnet.datasets import DIGITS_CLASSES, digits_split, write_digits


def read_split(root, split):
    with open(os.path.join(root, 'meta', f'{split}.txt')) as file:
        return [line.split() for line in file]


def test_layout_split_and_pixels(tmp_path):
    root = write_digits(str(tmp_path / 'digits'))
    digits = load_digits()
    train, val = read_split(root, 'train'), read_split(root, 'val')
    assert (len(train), len(val)) == (1437, 360)

    expected_train, expected_val = digits_split(len(digits.target))
    for entries, indices, split in ((train, expected_train, 'train'), (val, expected_val, 'val')):
        assert [int(name.split('/')[1][:-4]) for name, _ in entries] == indices.tolist()
        assert [int(label) for _, label in entries] == digits.target[indices].tolist()
        assert {label for _, label in entries} == set(DIGITS_CLASSES)
        for name, label in entries[:20]:
            assert name.startswith(f'{label}/')
            image = Image.open(os.path.join(root, split, name))
            assert (image.size, image.mode) == ((32, 32), 'L')
            # back down to 8x8, the image is the original digit (16 grey levels, dark on light)
            index = int(name.split('/')[1][:-4])
            small = np.asarray(image.resize((8, 8), Image.BOX), dtype=float)
            original = 255 - digits.images[index] * 255 / 16
            assert np.corrcoef(small.ravel(), original.ravel())[0, 1] > 0.9
    assert set(expected_val) == set(range(0, 1797, 5))


def test_existing_folder_is_left_alone(tmp_path):
    root = tmp_path / 'digits'
    root.mkdir()
    (root / 'mine.txt').write_text('keep')
    assert write_digits(str(root)) == str(root)
    assert os.listdir(root) == ['mine.txt']


def test_no_staging_folder_left_behind(tmp_path):
    write_digits(str(tmp_path / 'digits'))
    assert os.listdir(tmp_path) == ['digits']


def test_mmpretrain_imagenet_dataset_reads_it(tmp_path):
    root = write_digits(str(tmp_path / 'digits'))
    init_default_scope('mmpretrain')
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(
        dict(type='ImageNet', data_root=root, split='val', metainfo=dict(classes=DIGITS_CLASSES),
             pipeline=[dict(type='LoadImageFromFile')]))
    assert len(dataset) == 360 and tuple(dataset.metainfo['classes']) == DIGITS_CLASSES
    sample = dataset[1]
    assert sample['img'].shape == (32, 32, 3) and sample['gt_label'] == 5
