"""The detection command lines on the generated shapes set: tools/make_shapes_dataset.py,
tools/test.py (COCO metrics, --out, test-dev format-only), tools/dist_train.sh on two CPU
processes, tools/train.py, and tools/demo/det_demo.py through MMDetection's DetInferencer.

The tools run from a scratch folder holding ``data/shapes``, so the quickstart config's relative
``data_root`` finds the test's 8 training and 4 val images."""
import json
import os
import runpy
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.registry import init_default_scope

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.datasets import SHAPES_CLASSES

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'mask_rcnn_dsnet_tiny_shapes.py')
COCO_METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m',
                'bbox_mAP_l', 'segm_mAP', 'segm_mAP_50', 'segm_mAP_75', 'segm_mAP_s',
                'segm_mAP_m', 'segm_mAP_l')


def run(args, cwd, timeout=600, **env):
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout,
                            env={**os.environ, 'PYTHONPATH': REPO_ROOT, **env})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder with data/shapes (8 train, 4 val images) and a random-weight checkpoint."""
    root = tmp_path_factory.mktemp('det_tools')
    output = run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'make_shapes_dataset.py'),
                  '--num-train', 8, '--num-val', 4], cwd=root)
    assert 'wrote 8 train and 4 val images under data/shapes' in output
    assert os.path.isfile(root / 'data' / 'shapes' / 'annotations' / 'instances_val.json')

    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=SHAPES_CLASSES))), root / 'random.pth')
    return root


def test_test_py_prints_coco_bbox_and_segm_metrics(workspace):
    output = run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'test.py'), CONFIG,
                  'random.pth', '--out', 'preds.pkl'], cwd=workspace)
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]' in output
    for metric in COCO_METRICS:
        value = output.split(f'coco/{metric}: ')[1].split()[0]
        assert 0 <= float(value) <= 1 or value == '-1.0000'

    predictions = load(workspace / 'preds.pkl')
    assert sorted(pred['img_id'] for pred in predictions) == [0, 1, 2, 3]
    assert {'bboxes', 'labels', 'scores', 'masks'} <= set(predictions[0]['pred_instances'])
    masks = predictions[0]['pred_instances']['masks']
    assert all(set(mask) == {'size', 'counts'} for mask in masks)  # RLE, not (H, W) arrays


def test_format_only_writes_test_dev_style_results(workspace):
    """The docs/detection.md switch to COCO test-dev, on an image list without annotations."""
    shapes = workspace / 'data' / 'shapes' / 'annotations'
    val = json.load(open(shapes / 'instances_val.json'))
    json.dump(dict(images=val['images'], categories=val['categories']),
              open(shapes / 'image_info_val.json', 'w'))

    output = run([
        sys.executable, os.path.join(REPO_ROOT, 'tools', 'test.py'), CONFIG, 'random.pth',
        '--cfg-options', 'test_dataloader.dataset.ann_file=annotations/image_info_val.json',
        'test_dataloader.dataset.data_prefix.img=val/', 'test_evaluator.format_only=True',
        'test_evaluator.ann_file=data/shapes/annotations/image_info_val.json',
        'test_evaluator.outfile_prefix=submission/shapes_val'
    ], cwd=workspace)
    assert 'coco/bbox_mAP' not in output
    bbox = json.load(open(workspace / 'submission' / 'shapes_val.bbox.json'))
    segm = json.load(open(workspace / 'submission' / 'shapes_val.segm.json'))
    assert bbox and len(bbox) == len(segm)
    assert {det['image_id'] for det in bbox} <= {0, 1, 2, 3}
    assert {det['category_id'] for det in bbox} <= {1, 2, 3}
    assert set(bbox[0]) == {'image_id', 'bbox', 'score', 'category_id'}
    assert set(segm[0]['segmentation']) == {'size', 'counts'}


def test_dist_train_runs_two_cpu_processes(workspace, free_port):
    output = run([
        'bash', os.path.join(REPO_ROOT, 'tools', 'dist_train.sh'), CONFIG, 2, '--work-dir',
        'dist', '--cfg-options', 'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1'
    ], cwd=workspace, PORT=str(free_port()))
    # 8 images over 2 processes x 2 images: 2 iterations, then distributed COCO evaluation.
    assert 'Distributed training: True' in output
    assert 'Epoch(train) [1][2/2]' in output
    assert 'coco/bbox_mAP' in output and 'coco/segm_mAP' in output
    assert os.path.isfile(workspace / 'dist' / 'epoch_1.pth')


def test_det_demo_draws_the_detections(workspace, monkeypatch, capsys):
    image = workspace / 'data' / 'shapes' / 'val' / '000000.png'
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(sys, 'argv', [
        'det_demo.py', str(image), CONFIG, 'random.pth', '--out-file', 'drawn.jpg',
        '--score-thr', '0'
    ])
    runpy.run_path(os.path.join(REPO_ROOT, 'tools', 'demo', 'det_demo.py'), run_name='__main__')

    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith('detections with score >= 0.0; drawn in drawn.jpg')
    detections = int(lines[-1].split()[0])
    assert detections > 0
    assert {line.split()[0] for line in lines[-1 - detections:-1]} <= set(SHAPES_CLASSES)
    drawn, original = cv2.imread('drawn.jpg'), cv2.imread(str(image))
    assert drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original).mean() > 2


def test_det_inferencer_runs_a_coco_config():
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(
        model=os.path.join(REPO_ROOT, 'configs', 'mask_rcnn_dsnet_tiny_coco.py'), device='cpu')
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    result = inferencer(image, return_vis=True, no_save_vis=True)
    prediction = result['predictions'][0]
    assert len(prediction['bboxes']) == len(prediction['labels']) == len(prediction['masks'])
    assert result['visualization'][0].shape == (96, 128, 3)


@pytest.mark.slow
def test_shapes_training_loss_falls(workspace):
    """The CI-size quickstart run: 3 epochs on 64 images, 8 per batch, a 5-iteration warm-up;
    the loss of every iteration is logged (no smoothing window)."""
    run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'make_shapes_dataset.py'),
         '--out', 'data/shapes64', '--num-train', 64, '--num-val', 4], cwd=workspace)
    run([
        sys.executable, os.path.join(REPO_ROOT, 'tools', 'train.py'), CONFIG, '--work-dir',
        'ci_run', '--cfg-options', 'train_dataloader.dataset.data_root=data/shapes64/',
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=3', 'param_scheduler.0.end=5',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1'
    ], cwd=workspace)
    scalars, = (workspace / 'ci_run').glob('*/vis_data/scalars.json')
    losses = [json.loads(line)['loss'] for line in open(scalars) if '"loss"' in line]
    assert len(losses) == 24
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
