"""Segmentation annotation faults (ADE20K's layout): a missing label map is a counted, logged
skip; a label map of the wrong size or with labels out of range is a clear error when the sample
is loaded, never a crash deep in a transform or ``IndexError: Target 200 is out of bounds`` in
the loss. And ``import mmdsnet`` needs no MMSegmentation."""
import os

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

import mmdsnet  # noqa: F401
from mmdsnet.datasets import SHAPES_SEMANTIC_CLASSES, write_shapes_semantic_split
from mmdsnet.launch import load_config

checked_ade20k = pytest.importorskip('mmdsnet.datasets.checked_ade20k')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADE_CONFIG = os.path.join(REPO_ROOT, 'configs', 'upernet_dsnet_tiny_ade20k.py')
SHAPES_CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'fpn_dsnet_tiny_shapes_ade.py')
IMAGE_SIZE = 48


@pytest.fixture
def root(tmp_path):
    """4 shapes images and label maps in ADE20K's layout (labels 1-4: valid ADE20K labels)."""
    write_shapes_semantic_split(str(tmp_path), 'training', 4, image_size=IMAGE_SIZE)
    return tmp_path


def annotation(root, index):
    return root / 'annotations' / 'training' / f'{index:06d}.png'


def build(root, config=ADE_CONFIG, split='train', **overrides):
    """The config's ``split`` dataset on the set under ``root``."""
    from mmseg.registry import DATASETS
    dataset_cfg = load_config(config)[f'{split}_dataloader'].dataset
    dataset_cfg.update(
        data_root=str(root),
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        **overrides)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dataset_cfg)


@pytest.fixture
def warnings(monkeypatch):
    """The messages the datasets log."""
    logged = []
    monkeypatch.setattr(checked_ade20k, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    return logged


@pytest.mark.parametrize('config', [ADE_CONFIG, SHAPES_CONFIG])
def test_a_good_set_loads_and_its_samples_pass_the_check(root, config, warnings):
    dataset = build(root, config)
    assert type(dataset).__name__ == {ADE_CONFIG: 'CheckedADE20KDataset',
                                      SHAPES_CONFIG: 'CheckedSegDataset'}[config]
    assert len(dataset) == 4 and not dataset.skipped and not warnings
    names = [type(transform).__name__ for transform in dataset.pipeline.transforms]
    assert names[names.index('LoadAnnotations') + 1] == 'CheckSegMap'
    num_classes = 150 if config == ADE_CONFIG else len(SHAPES_SEMANTIC_CLASSES)
    assert dataset.pipeline.transforms[names.index('CheckSegMap')].num_classes == num_classes
    for index in range(len(dataset)):
        labels = dataset[index]['data_samples'].gt_sem_seg.data.unique().tolist()
        # reduce_zero_label: 1 (background) is class 0, a shape class_index + 1
        assert 0 in labels and set(labels) <= {0, 1, 2, 3, 255}


def test_missing_annotations_are_skipped_counted_and_logged(root, warnings):
    for index in (0, 2):
        annotation(root, index).unlink()
    dataset = build(root)
    assert len(dataset) == 2
    assert [os.path.basename(dataset.get_data_info(i)['img_path']) for i in range(2)] == [
        '000001.jpg', '000003.jpg']
    assert dict(dataset.skipped) == {'images without an annotation file': 2}
    assert warnings == [
        f'{root}/images/training: skipped 2 of 4 images without an annotation file in '
        f'{root}/annotations/training (e.g. 000000.jpg)']


def test_no_annotation_at_all_names_both_folders(root):
    for index in range(4):
        annotation(root, index).unlink()
    with pytest.raises(ValueError, match=f'no image of {root}/images/training \\(\\*.jpg\\) has '
                       f'its annotation in {root}/annotations/training \\(\\*.png\\): 4 images '
                       f'found, e.g. {root}/images/training/000000.jpg without '
                       f'{root}/annotations/training/000000.png'):
        build(root)


@pytest.mark.parametrize('split', ['train', 'val'])  # val: the image is resized before the check
def test_annotation_of_the_wrong_size_names_file_and_shapes(root, split):
    cv2.imwrite(str(annotation(root, 1)), np.ones((IMAGE_SIZE - 8, IMAGE_SIZE), np.uint8))
    dataset = build(root, split=split)
    dataset[0]
    with pytest.raises(ValueError, match=f'{annotation(root, 1)}: the annotation is 40x48 '
                       r'\(height x width\), but its image .*000001.jpg is 48x48'):
        dataset[1]


def test_labels_out_of_range_name_the_values_and_the_number_of_classes(root):
    labels = np.ones((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    labels[:4, :4], labels[4:8, :4], labels[8:12, :4] = 201, 0, 255  # 0 and 255 are ignored
    cv2.imwrite(str(annotation(root, 2)), labels)
    with pytest.raises(ValueError, match=f'{annotation(root, 2)}: labels \\[200\\] are out of '
                       r'range for 150 classes \(0-149, 255 ignored\); the file holds \[201\]'):
        build(root)[2]

    labels[:4, :4] = 5  # the shapes set has labels 1-4
    cv2.imwrite(str(annotation(root, 2)), labels)
    dataset = build(root, SHAPES_CONFIG)
    with pytest.raises(ValueError, match=r'labels \[4\] are out of range for 4 classes \(0-3'):
        dataset[2]
    assert (dataset[1]['data_samples'].gt_sem_seg.data < 4).all()


def test_test_time_augmentation_checks_each_of_its_pipelines(root):
    dataset = build(root, split='val', pipeline=load_config(ADE_CONFIG).tta_pipeline)
    subroutines = dataset.pipeline.transforms[1].subroutines
    assert len(subroutines) == 12
    for subroutine in subroutines:
        names = [type(transform).__name__ for transform in subroutine.transforms]
        assert names[-3:] == ['LoadAnnotations', 'CheckSegMap', 'PackSegInputs']


def test_import_mmdsnet_needs_no_mmsegmentation(run_python):
    result = run_python("import sys\n"
                        "sys.modules['mmseg'] = None  # not installed\n"
                        'import mmdsnet\n'
                        'from mmdsnet.datasets import write_shapes_semantic_dataset\n'
                        "assert not any(name.startswith('mmseg') for name in sys.modules\n"
                        "               if sys.modules[name] is not None)\n"
                        'import mmdsnet.datasets.checked_ade20k\n')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: No module named 'mmseg.datasets'; 'mmseg' is not a package")
