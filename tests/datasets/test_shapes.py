"""The generated shapes set: valid COCO, masks that match the pixels, deterministic, and read by
the quickstart config's dataset with the right classes; the semantic set in ADE20K's layout,
painted from the same shapes."""
import json
import os

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmdsnet.datasets import (SHAPES_CLASSES, SHAPES_SEMANTIC_CLASSES, write_shapes_dataset,
                              write_shapes_semantic_dataset, write_shapes_semantic_split,
                              write_shapes_split)
from mmdsnet.datasets.shapes import MIN_COLOR_DISTANCE, NOISE_STD

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    return str(root), write_shapes_dataset(str(root), num_train=12, num_val=6, image_size=96)


def test_writes_coco_layout(shapes):
    root, ann_files = shapes
    assert ann_files == {split: os.path.join(root, 'annotations', f'instances_{split}.json')
                         for split in ('train', 'val')}
    for split, num_images in (('train', 12), ('val', 6)):
        coco = COCO(ann_files[split])
        assert len(coco.imgs) == num_images
        assert [cat['name'] for cat in coco.loadCats(coco.getCatIds())] == list(SHAPES_CLASSES)
        for image in coco.imgs.values():
            pixels = cv2.imread(os.path.join(root, split, image['file_name']))
            assert pixels.shape == (96, 96, 3)
            assert 1 <= len(coco.getAnnIds(imgIds=image['id'])) <= 4
        assert {ann['category_id'] for ann in coco.anns.values()} <= {1, 2, 3}
        assert len({ann['id'] for ann in coco.anns.values()}) == len(coco.anns)


def test_annotations_are_polygons_with_matching_box_and_area(shapes):
    root, ann_files = shapes
    coco = COCO(ann_files['train'])
    for ann in coco.anns.values():
        assert ann['iscrowd'] == 0 and len(ann['segmentation']) == 1
        polygon = np.array(ann['segmentation'][0]).reshape(-1, 2)
        assert len(polygon) >= 3
        x, y, w, h = ann['bbox']
        np.testing.assert_allclose([x, y, x + w, y + h],
                                   [*polygon.min(axis=0), *polygon.max(axis=0)], atol=0.02)
        mask = coco.annToMask(ann)
        assert ann['area'] == mask.sum() > 0
        rows, cols = np.nonzero(mask)
        assert x - 1 <= cols.min() and cols.max() <= x + w and y - 1 <= rows.min()
        assert rows.max() <= y + h


def test_masks_cover_the_drawn_shapes(shapes):
    """Inside a mask the pixels are one colour plus noise, far from the background colour."""
    root, ann_files = shapes
    coco = COCO(ann_files['val'])
    for image in coco.imgs.values():
        pixels = cv2.imread(os.path.join(root, 'val', image['file_name'])).astype(float)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image['id']))
        masks = [coco.annToMask(ann).astype(bool) for ann in anns]
        background = np.median(pixels[~np.any(masks, axis=0)], axis=0)
        for mask in masks:
            inside = pixels[mask]
            color = np.median(inside, axis=0)
            near_color = np.abs(inside - color).max(axis=1) <= 4 * NOISE_STD
            assert near_color.mean() >= 0.9
            assert np.abs(color - background).sum() >= MIN_COLOR_DISTANCE - 3 * NOISE_STD


def test_same_seed_same_bytes_and_splits_are_prefixes(tmp_path, shapes):
    root, _ = shapes
    ann_file = write_shapes_split(str(tmp_path), 'val', num_images=3, image_size=96)
    ours = json.load(open(ann_file))
    full = json.load(open(os.path.join(root, 'annotations', 'instances_val.json')))
    assert ours['images'] == full['images'][:3]
    assert ours['annotations'] == [ann for ann in full['annotations'] if ann['image_id'] < 3]
    for image in ours['images']:
        with open(tmp_path / 'val' / image['file_name'], 'rb') as mine, open(
                os.path.join(root, 'val', image['file_name']), 'rb') as theirs:
            assert mine.read() == theirs.read()

    other = write_shapes_split(str(tmp_path / 'seed1'), 'val', 3, image_size=96, seed=1)
    assert json.load(open(other))['annotations'] != ours['annotations']


def test_rejects_unknown_split_and_tiny_images(tmp_path):
    with pytest.raises(ValueError, match='split'):
        write_shapes_split(str(tmp_path), 'test', 1)
    with pytest.raises(ValueError, match='image_size'):
        write_shapes_split(str(tmp_path), 'val', 1, image_size=16)


def test_quickstart_dataset_reads_every_instance_with_its_class(shapes):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    root, ann_files = shapes
    cfg = Config.fromfile(
        os.path.join(REPO_ROOT, 'configs', 'quickstart', 'mask_rcnn_dsnet_tiny_shapes.py'))
    init_default_scope('mmdet')
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root + '/'))
    coco = COCO(ann_files['train'])
    assert len(dataset) == len(coco.imgs)
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        anns = coco.loadAnns(coco.getAnnIds(imgIds=sample.img_id))
        gt = sample.gt_instances
        assert gt.labels.tolist() == [ann['category_id'] - 1 for ann in anns]
        assert gt.masks.masks.shape[0] == len(anns)
        # the pipeline resizes the 96-pixel images to 128
        scale = np.prod(sample.scale_factor)
        assert gt.masks.areas.tolist() == pytest.approx(
            [ann['area'] * scale for ann in anns], rel=0.1)


@pytest.fixture(scope='module')
def semantic(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes_ade')
    return str(root), write_shapes_semantic_dataset(str(root), num_train=4, num_val=6,
                                                    image_size=96)


def test_semantic_set_has_the_ade20k_layout_and_labels(semantic):
    root, folders = semantic
    assert folders == {split: (os.path.join(root, 'images', split),
                               os.path.join(root, 'annotations', split))
                       for split in ('training', 'validation')}
    assert SHAPES_SEMANTIC_CLASSES == ('background', 'circle', 'triangle', 'rectangle')
    for split, num_images in (('training', 4), ('validation', 6)):
        image_dir, ann_dir = folders[split]
        names = [f'{index:06d}' for index in range(num_images)]
        assert sorted(os.listdir(image_dir)) == [name + '.jpg' for name in names]
        assert sorted(os.listdir(ann_dir)) == [name + '.png' for name in names]
        for name in names:
            assert cv2.imread(os.path.join(image_dir, name + '.jpg')).shape == (96, 96, 3)
            labels = cv2.imread(os.path.join(ann_dir, name + '.png'), cv2.IMREAD_UNCHANGED)
            assert labels.shape == (96, 96) and labels.dtype == np.uint8
            # 1 background, 2-4 shapes; 0 (unlabelled in ADE20K) unused
            assert 1 in labels and 2 <= labels.max() <= 4 and labels.min() >= 1


def test_semantic_labels_are_the_instances_of_the_same_images(semantic, shapes):
    """The validation split draws the images of the instance set's val split (same seed): its
    label maps hold each instance's class where its COCO mask is, and the images match."""
    root, folders = semantic
    coco_root, ann_files = shapes
    coco = COCO(ann_files['val'])
    for image in coco.imgs.values():
        name = image['file_name'][:-len('.png')]
        labels = cv2.imread(os.path.join(folders['validation'][1], name + '.png'),
                            cv2.IMREAD_UNCHANGED)
        jpeg = cv2.imread(os.path.join(folders['validation'][0], name + '.jpg')).astype(float)
        png = cv2.imread(os.path.join(coco_root, 'val', image['file_name'])).astype(float)
        assert np.abs(jpeg - png).mean() < NOISE_STD  # only JPEG's loss
        masks = {label: np.zeros(labels.shape, bool) for label in (2, 3, 4)}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
            masks[ann['category_id'] + 1] |= coco.annToMask(ann).astype(bool)
        # Equal up to the outline: cv2.fillPoly paints up to 2 pixels beyond pycocotools' masks.
        near_a_shape = np.zeros(labels.shape, bool)
        for label, mask in masks.items():
            inner, outer = (morph(mask.astype(np.uint8), np.ones((5, 5))).astype(bool)
                            for morph in (cv2.erode, cv2.dilate))
            assert (labels[inner] == label).all() and not (labels[~outer] == label).any()
            near_a_shape |= outer
        assert (labels[~near_a_shape] == 1).all()


def test_semantic_set_is_reproducible(tmp_path, semantic):
    root, _ = semantic
    write_shapes_semantic_split(str(tmp_path), 'validation', num_images=3, image_size=96)
    write_shapes_semantic_split(str(tmp_path / 'seed1'), 'validation', 3, image_size=96, seed=1)
    for kind, suffix in (('images', '.jpg'), ('annotations', '.png')):
        for index in range(3):
            path = os.path.join(kind, 'validation', f'{index:06d}{suffix}')
            with open(tmp_path / path, 'rb') as mine, open(os.path.join(root, path),
                                                           'rb') as theirs:
                assert mine.read() == theirs.read()
    seed1 = cv2.imread(str(tmp_path / 'seed1' / 'annotations' / 'validation' / '000000.png'))
    assert (seed1 != cv2.imread(str(tmp_path / 'annotations' / 'validation' / '000000.png'))).any()
    with pytest.raises(ValueError, match='split'):
        write_shapes_semantic_split(str(tmp_path), 'val', 1)
