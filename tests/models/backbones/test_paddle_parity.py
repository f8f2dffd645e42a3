"""DSNet computes PaddleClas' DSNet: convert its weights, compare every stage and the logits.

Needs an interpreter with ``paddlepaddle`` and ``paddleclas`` (``pip install -e .[parity]`` into
a separate virtualenv, since Paddle pins its own numpy/protobuf): set ``MMDSNET_PADDLE_PYTHON``
to it, or run the tests with an interpreter that imports paddle. Skipped, with the reason shown,
when neither is there. Run: ``pytest -m parity -rs``.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdsnet  # noqa: F401
from mmdsnet.checkpoint import load_torch_file

HERE = Path(__file__).resolve().parent
CONVERTER = HERE.parents[2] / 'tools' / 'model_converters' / 'paddle2mmdsnet.py'


def paddle_python():
    if os.environ.get('MMDSNET_PADDLE_PYTHON'):
        return os.environ['MMDSNET_PADDLE_PYTHON']
    if importlib.util.find_spec('paddle') and importlib.util.find_spec('paddleclas'):
        return sys.executable
    return None


pytestmark = [
    pytest.mark.parity,
    pytest.mark.skipif(paddle_python() is None,
                       reason='PaddleClas parity needs paddlepaddle + paddleclas: set '
                       'MMDSNET_PADDLE_PYTHON to an interpreter that has them'),
]


def relative_error(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize('arch', ['small'])
def test_every_stage_and_the_logits_match_paddleclas(arch, tmp_path):
    result = subprocess.run(
        [paddle_python(), str(HERE / 'paddle_dsnet_reference.py'), arch, str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = np.load(tmp_path / 'reference.npz')

    from mmpretrain.registry import MODELS
    classifier = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='DSNet', arch=arch, out_indices=(0, 1, 2, 3)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=512)))
    converted = subprocess.run([sys.executable, str(CONVERTER), str(tmp_path / 'model.pdparams'),
                                str(tmp_path / 'converted.pth')], capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr[-3000:]
    classifier.load_state_dict(load_torch_file(str(tmp_path / 'converted.pth'))['state_dict'],
                               strict=True)
    classifier.eval()

    image = torch.from_numpy(reference['input'])
    with torch.no_grad():
        stages = classifier.backbone(image)
        logits = classifier.head.fc(classifier.neck(stages[-1:])[0])
    errors = {f'stage{i + 1}': relative_error(stage.numpy(), reference[f'stage{i + 1}'])
              for i, stage in enumerate(stages)}
    errors['logits'] = relative_error(logits.numpy(), reference['logits'])
    print('relative errors vs PaddleClas:', errors)
    assert np.abs(reference['stage3']).max() < 1e3  # the scaled init kept activations sane
    assert max(errors.values()) <= 1e-5, errors
