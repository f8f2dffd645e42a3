"""mmdsnet.compat.torch_weights_only: the upstream failures reproduced (torch >= 2.6 refuses
MMEngine's Runner checkpoints; older torch runs a crafted checkpoint's code through MMEngine), the
Runner resuming and loading through the allowlist, and the unpickler that enforces the allowlist
on torch < 2.6 following the rules of today's ``weights_only=True`` (tested on every torch).

The "upstream" tests run in a fresh interpreter that never imports mmdsnet; if upstream ever
stops failing, they fail and the shim can go.
"""
import argparse
import collections
import io
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmdsnet.checkpoint import checkpoint_safe_globals
from mmdsnet.compat.torch_weights_only import (ALLOWLIST_PICKLE_MODULE,
                                               TORCH_TAKES_NAMED_SAFE_GLOBALS,
                                               allowlist_pickle_module)
from mmdsnet.engine.checkpoint_files import save_torch_file


class ToyClassifier(BaseModel):
    """Small enough to train for 3 epochs in a second."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.classifier(self.features(torch.stack(inputs)))
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, torch.stack(labels))}
        return logits


class GeneratedImages(torch.utils.data.Dataset):

    def __init__(self, num_images=8):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(num_images, 3, 16, 16, generator=generator)
        self.labels = torch.arange(num_images) % 2

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return dict(inputs=self.images[index], labels=self.labels[index])


def make_runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=ToyClassifier(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=GeneratedImages(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], gamma=0.5),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs)


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    make_runner(work_dir, max_epochs=2).train()
    return work_dir


@pytest.mark.skipif(not TORCH_TAKES_NAMED_SAFE_GLOBALS,
                    reason=f'torch {torch.__version__} < 2.6 does not load with weights_only=True '
                    'by default; the failure there is test_mmengine_runs_checkpoint_code_upstream_'
                    'on_old_torch')
def test_runner_checkpoint_needs_more_than_plain_weights_only(trained_work_dir, run_python):
    result = run_python(
        'import torch\n'
        f'torch.load({str(trained_work_dir / "epoch_2.pth")!r})\n')
    assert result.returncode != 0
    assert 'Weights only load failed' in result.stderr
    assert 'HistoryBuffer' in result.stderr or 'numpy' in result.stderr


@pytest.mark.skipif(TORCH_TAKES_NAMED_SAFE_GLOBALS,
                    reason=f'torch {torch.__version__} >= 2.6 refuses the crafted checkpoint '
                    'itself; the failure there is test_runner_checkpoint_needs_more_than_plain_'
                    'weights_only')
def test_mmengine_runs_checkpoint_code_upstream_on_old_torch(crafted_pth, marker, run_python):
    result = run_python('import torch.nn as nn\n'
                        'from mmengine.runner import load_checkpoint\n'
                        f'load_checkpoint(nn.Linear(2, 2), {crafted_pth!r})\n')
    assert marker.exists(), result.stderr


def test_runner_resumes_from_epoch_2_to_3_under_weights_only(trained_work_dir, monkeypatch):
    loads = []
    original_load = torch.load

    def spy_load(*args, **kwargs):
        loads.append((kwargs.get('weights_only'),
                      getattr(kwargs.get('pickle_module'), '__name__', None)))
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)
    runner = make_runner(trained_work_dir, max_epochs=3, resume=True)
    runner.train()

    # weights_only=True with the allowlist, or (torch < 2.6) the unpickler that enforces it
    expected = (True, None) if TORCH_TAKES_NAMED_SAFE_GLOBALS else (None, ALLOWLIST_PICKLE_MODULE)
    assert loads and all(load == expected for load in loads)
    assert runner.epoch == 3
    iters_per_epoch = len(GeneratedImages()) // 4
    assert runner.iter == 3 * iters_per_epoch
    # AdamW's step count continues from the checkpoint instead of restarting at zero.
    steps = {int(state['step']) for state in runner.optim_wrapper.optimizer.state.values()}
    assert steps == {3 * iters_per_epoch}
    assert runner.optim_wrapper.get_lr()['lr'] == [pytest.approx(5e-4)]
    assert (trained_work_dir / 'epoch_3.pth').is_file()


def test_load_from_restores_weights_exactly(trained_work_dir, tmp_path):
    runner = make_runner(tmp_path, max_epochs=1, load_from=str(trained_work_dir / 'epoch_2.pth'))
    runner.load_or_resume()
    saved = torch.load(trained_work_dir / 'epoch_2.pth', weights_only=False)['state_dict']
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, saved[name]), name


def assert_same_objects(loaded, expected, where='checkpoint'):
    """``loaded`` was rebuilt as ``expected``: same types, values and tensor metadata."""
    assert type(loaded) is type(expected), where
    if isinstance(expected, torch.Tensor):
        assert loaded.dtype == expected.dtype and loaded.requires_grad == expected.requires_grad
        assert torch.equal(loaded, expected), where
    elif isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype, where
        np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected), where
        for key in expected:
            assert_same_objects(loaded[key], expected[key], f'{where}[{key!r}]')
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected), where
        for index, (got, want) in enumerate(zip(loaded, expected)):
            assert_same_objects(got, want, f'{where}[{index}]')
    elif hasattr(expected, '__dict__') and not callable(expected):
        assert_same_objects(vars(loaded), vars(expected), f'{where}.__dict__')
    else:
        assert loaded == expected, where


def test_allowlist_unpickler_rebuilds_what_the_file_holds(tmp_path):
    """Every kind of object the allowlist admits, in a file we wrote ourselves, comes back as
    Python's unrestricted unpickler rebuilds it."""
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('allowlist_unpickler_test')
    for value in (1.0, 0.5):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', np.int64(4))
    everything = {
        'message_hub': hub.state_dict(),
        'statistics': [HistoryBuffer.mean, HistoryBuffer.current],  # pickled as getattr
        'args': argparse.Namespace(model='dsnet_tiny', lr=1e-3),
        'numpy': [np.arange(6, dtype=np.float32).reshape(2, 3), np.float64(0.5), np.bool_(True)],
        'state_dict': collections.OrderedDict(weight=torch.randn(3, 2),
                                              half=torch.ones(2, dtype=torch.bfloat16)),
        'parameter': nn.Parameter(torch.ones(2)),
        'plain': [{1, 2}, collections.Counter('aab'), bytearray(b'ab'), 1 + 2j,
                  torch.device('cpu'), torch.float16, b'bytes', (1, 'two', None, True)],
    }
    path = tmp_path / 'everything.pth'
    save_torch_file(everything, str(path))
    reference = torch.load(path, weights_only=False)  # our own file, never a downloaded one
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith('/data.pkl')))
    assert b'getattr' in pickled
    loaded = torch.load(path, pickle_module=allowlist_pickle_module(checkpoint_safe_globals()))
    assert_same_objects(loaded, reference)
    assert loaded['statistics'][0] is HistoryBuffer.mean


def global_op(module, name):
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def text(value):
    return b'X' + struct.pack('<I', len(value)) + value.encode()


NAMESPACE = global_op('argparse', 'Namespace')
NEW_NAMESPACE = NAMESPACE + b')\x81'  # EMPTY_TUPLE NEWOBJ
HISTORY_BUFFER = global_op('mmengine.logging.history_buffer', 'HistoryBuffer')
GETATTR_MEAN = global_op('builtins', 'getattr') + HISTORY_BUFFER + text('mean') + b'\x86R'

# Protocol-2 pickles by hand (PROTO 2 ... STOP): what each asks for, and what happens.
CRAFTED_PICKLES = {
    'calls os.system': (global_op('posix', 'system') + text('true') + b'\x85R', 'refused'),
    'sets attributes of an allowed class': (NAMESPACE + b'}' + text('x') + b'K\x01sb', 'refused'),
    'calls a method reached through getattr': (GETATTR_MEAN + b')R', 'refused'),
    'appends to an instance': (NEW_NAMESPACE + b'K\x01a', 'refused'),
    'sets an item of an instance': (NEW_NAMESPACE + text('key') + b'K\x01s', 'refused'),
    'asks for a persistent object that is no storage': (text('module') + b'\x85Q', 'refused'),
    'builds with the OBJ opcode': (b'(' + NAMESPACE + b'o', 'unsupported'),
    'builds a Namespace': (NEW_NAMESPACE + b'}' + text('x') + b'K\x01sb', 'allowed'),
    'looks up a HistoryBuffer statistic': (GETATTR_MEAN, 'allowed'),
}


def unpickling_outcome(unpickler_class, data):
    try:
        unpickler_class(io.BytesIO(b'\x80\x02' + data + b'.'), encoding='utf-8').load()
    except pickle.UnpicklingError as error:
        return 'unsupported' if 'Unsupported operand' in str(error) else 'refused'
    return 'allowed'


@pytest.mark.parametrize('case', list(CRAFTED_PICKLES))
def test_allowlist_unpickler_enforces_the_rules_of_weights_only(case):
    data, expected = CRAFTED_PICKLES[case]
    unpickler = allowlist_pickle_module(checkpoint_safe_globals()).Unpickler
    assert unpickling_outcome(unpickler, data) == expected
    if TORCH_TAKES_NAMED_SAFE_GLOBALS:  # today's torch: its own verdict with our allowlist
        from torch._weights_only_unpickler import Unpickler as WeightsOnlyUnpickler
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            assert unpickling_outcome(WeightsOnlyUnpickler, data) == expected
