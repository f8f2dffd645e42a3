"""COCO annotation faults: a clear error, or a counted and logged skip; never a crash deep in a
transform or a silently wrong target."""
import json
import os

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

import mmdsnet  # noqa: F401
from mmdsnet.launch import load_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart',
                             'mask_rcnn_dsnet_tiny_shapes.py')
CATEGORIES = [{'id': 1, 'name': 'circle'}, {'id': 2, 'name': 'triangle'},
              {'id': 3, 'name': 'rectangle'}]
SQUARE = [10, 10, 30, 10, 30, 30, 10, 30]


def annotation(ann_id, image_id, bbox, segmentation, category_id=1):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=bbox,
                area=bbox[2] * bbox[3], iscrowd=0, segmentation=segmentation)


def build(tmp_path, annotations, num_images=3, split='train'):
    (tmp_path / 'images').mkdir(exist_ok=True)
    for index in range(num_images):
        cv2.imwrite(str(tmp_path / 'images' / f'{index}.png'), np.full((64, 64, 3), 90, np.uint8))
    images = [dict(id=i, file_name=f'{i}.png', width=64, height=64) for i in range(num_images)]
    (tmp_path / 'ann.json').write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=CATEGORIES)))
    from mmdet.registry import DATASETS
    dataset_cfg = load_config(SHAPES_CONFIG)[f'{split}_dataloader'].dataset
    dataset_cfg.update(data_root=str(tmp_path), ann_file='ann.json',
                       data_prefix=dict(img='images/'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dataset_cfg)


def test_faults_are_skipped_counted_and_the_rest_trains(tmp_path):
    dataset = build(tmp_path, [
        annotation(1, 0, [10, 10, 20, 20], [SQUARE]),
        annotation(2, 0, [5, 5, 0, 10], [SQUARE]),                   # zero-area box
        annotation(3, 0, [40, 40, 10, 10], [[40, 40, 50, 50]]),      # 2-point polygon
        annotation(4, 1, [20, 20, 10, 10], []),                      # empty segmentation
        annotation(5, 1, [20, 20, 10, 10], [[1, 1, 2, 2], SQUARE]),  # one usable polygon
    ])                                                               # image 2: no annotations
    assert dict(dataset.skipped) == {
        'zero-area or out-of-image boxes': 1,
        'instances without a polygon of 3+ points': 2,
        'images dropped by filter_cfg (no annotations or too small)': 1}
    assert [len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))] == [1, 1]
    assert dataset.get_data_info(1)['instances'][0]['mask'] == [SQUARE]
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        assert len(sample.gt_instances.masks) == len(sample.gt_instances.bboxes) == 1


def test_unknown_category_names_file_annotation_and_image(tmp_path):
    with pytest.raises(ValueError, match=r"ann.json: annotation 7 of image '0.png' has "
                       r'category_id 99, which is not among the categories of the file '
                       r'\[1, 2, 3\]'):
        build(tmp_path, [annotation(7, 0, [10, 10, 20, 20], [SQUARE], category_id=99)])
