"""Weight files never run code: crafted pickles are refused on every loading path we use, both
by torch's ``weights_only=True`` with our allowlist (torch >= 2.6) and by ``AllowlistUnpickler``
(older torch; tested here on every torch). Checkpoints record a checksum that loading verifies,
and are written atomically."""
import argparse
import collections
import errno
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner, load_checkpoint

import mmdsnet.checkpoint
from mmdsnet.checkpoint import (TORCH_TAKES_NAMED_SAFE_GLOBALS, AllowlistUnpickler,
                                DamagedCheckpointError, UnsafeCheckpointError, load_pdparams,
                                load_pretrained_strictly, load_torch_file, save_torch_file,
                                verify_checksum)


@pytest.fixture(params=['weights_only', 'allowlist_unpickler'])
def loader(request, monkeypatch):
    """Runs a test once per way that load_torch_file enforces the allowlist."""
    if request.param == 'weights_only' and not TORCH_TAKES_NAMED_SAFE_GLOBALS:
        pytest.skip(f'torch {torch.__version__} < 2.6: weights_only=True cannot take the '
                    'allowlist here, AllowlistUnpickler (the other case) is what loads')
    monkeypatch.setattr(mmdsnet.checkpoint, 'TORCH_TAKES_NAMED_SAFE_GLOBALS',
                        request.param == 'weights_only')
    return request.param


def assert_refused(load, marker):
    with pytest.raises(UnsafeCheckpointError) as error:
        load()
    assert 'crafted' in str(error.value) and 'system' in str(error.value)
    assert not marker.exists(), 'the crafted pickle ran its code'


@pytest.mark.usefixtures('loader')
def test_load_torch_file_refuses_code(crafted_pth, marker):
    assert_refused(lambda: load_torch_file(crafted_pth), marker)


@pytest.mark.usefixtures('loader')
def test_mmengine_load_checkpoint_refuses_code(crafted_pth, marker):
    assert_refused(lambda: load_checkpoint(nn.Linear(2, 2), crafted_pth), marker)


def runner_with(tmp_path, **kwargs):
    return Runner(model=nn.Linear(2, 2), work_dir=str(tmp_path / 'work'), default_scope='mmengine',
                  **kwargs)


@pytest.mark.usefixtures('loader')
def test_runner_load_from_refuses_code(crafted_pth, marker, tmp_path):
    runner = runner_with(tmp_path, load_from=crafted_pth)
    assert_refused(runner.load_or_resume, marker)


@pytest.mark.usefixtures('loader')
def test_runner_resume_refuses_code(crafted_pth, marker, tmp_path):
    runner = runner_with(tmp_path, load_from=crafted_pth, resume=True)
    assert_refused(runner.load_or_resume, marker)


@pytest.mark.usefixtures('loader')
def test_deit_style_checkpoint_with_argparse_namespace_loads(tmp_path):
    path = tmp_path / 'deit_style.pth'
    args = argparse.Namespace(model='dsnet_small', lr=5e-4, drop_path=0.1)
    torch.save({'model': nn.Linear(2, 2).state_dict(), 'epoch': 299, 'args': args}, path)
    loaded = load_torch_file(str(path))
    assert loaded['args'] == args and loaded['epoch'] == 299


@pytest.mark.usefixtures('loader')
def test_numpy_values_load(tmp_path):
    path = tmp_path / 'numpy.pth'
    torch.save({'array': np.arange(3.), 'scalar': np.float64(0.5), 'int': np.int64(3)}, path)
    loaded = load_torch_file(str(path))
    np.testing.assert_array_equal(loaded['array'], np.arange(3.))
    assert loaded['scalar'] == 0.5 and loaded['int'] == 3


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
    loaded = torch.load(path, pickle_module=mmdsnet.checkpoint.allowlist_pickle_module)
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
    assert unpickling_outcome(AllowlistUnpickler, data) == expected
    if TORCH_TAKES_NAMED_SAFE_GLOBALS:  # today's torch: its own verdict with our allowlist
        from torch._weights_only_unpickler import Unpickler as WeightsOnlyUnpickler
        with torch.serialization.safe_globals(mmdsnet.checkpoint.checkpoint_safe_globals()):
            assert unpickling_outcome(WeightsOnlyUnpickler, data) == expected


@pytest.mark.usefixtures('loader')
def test_torchscript_archive_is_refused(tmp_path):
    """torch.load would hand it to torch.jit.load, which runs its code."""
    path = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))
    with pytest.raises(DamagedCheckpointError, match=r'scripted.pt.*(TorchScript|weights_only)'):
        load_torch_file(str(path))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_torch_file(str(tmp_path / 'nowhere.pth'))


# --------------------------------------------------------------------------- .pdparams


def test_pdparams_of_numpy_arrays_load(tmp_path):
    path = tmp_path / 'model.pdparams'
    state = {'head.weight': np.ones((4, 2), np.float32), 'norm._mean': np.zeros(4, np.float32),
             'StructuredToParameterName@@': {'head.weight': 'linear_0.w_0'}}
    path.write_bytes(pickle.dumps(state, protocol=2))
    loaded = load_pdparams(str(path))
    assert sorted(loaded) == ['head.weight', 'norm._mean']
    np.testing.assert_array_equal(loaded['head.weight'], state['head.weight'])


def test_pdparams_that_runs_code_is_refused(tmp_path, marker, code_running_object):
    path = tmp_path / 'crafted.pdparams'
    path.write_bytes(pickle.dumps({'w': np.ones(2), 'evil': code_running_object}))
    assert_refused(lambda: load_pdparams(str(path)), marker)


def test_pdparams_with_non_array_entry_is_refused(tmp_path):
    path = tmp_path / 'strange.pdparams'
    path.write_bytes(pickle.dumps({'w': [1.0, 2.0]}))
    with pytest.raises(ValueError, match="'w'"):
        load_pdparams(str(path))


# --------------------------------------------------------------------------- atomic save


def test_runner_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint

    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'step': 1}, str(path))

    def killed_before_the_data_is_on_disk(fd):
        raise KeyboardInterrupt  # a SIGINT while the new checkpoint is being written

    monkeypatch.setattr(os, 'fsync', killed_before_the_data_is_on_disk)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'step': 2}, str(path))
    monkeypatch.undo()
    assert load_torch_file(str(path)) == {'step': 1}
    assert os.listdir(tmp_path) == ['epoch_1.pth']


@pytest.mark.usefixtures('loader')
def test_init_cfg_pretrained_refuses_code(crafted_pth, marker):
    from mmdsnet.models import DSNet
    model = DSNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=crafted_pth))
    assert_refused(model.init_weights, marker)


# --------------------------------------------------------------------------- checksums


@pytest.fixture
def checkpoint_path(tmp_path):
    """A Runner-style checkpoint written by MMEngine's save_checkpoint (as CheckpointHook does)."""
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': nn.Linear(64, 64).state_dict(), 'meta': {'epoch': 1}},
                    str(path))
    return path


@pytest.mark.usefixtures('loader')
def test_checkpoints_record_a_checksum_that_any_zip_or_torch_reader_ignores(checkpoint_path):
    assert verify_checksum(str(checkpoint_path))
    assert zipfile.ZipFile(checkpoint_path).comment.startswith(b'mmdsnet-sha256:')
    plain = torch.load(checkpoint_path, weights_only=True)
    ours = load_torch_file(str(checkpoint_path))
    assert torch.equal(plain['state_dict']['weight'], ours['state_dict']['weight'])


def test_converted_weights_record_a_checksum(tmp_path):
    path = tmp_path / 'converted.pth'
    save_torch_file({'state_dict': nn.Linear(2, 2).state_dict()}, str(path))
    assert verify_checksum(str(path))


def test_a_changed_byte_is_refused_before_any_weights_are_touched(checkpoint_path, tmp_path):
    intact = torch.load(checkpoint_path, weights_only=True)['state_dict']['weight']
    damaged = bytearray(checkpoint_path.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # one flipped bit in the weights
    checkpoint_path.write_bytes(damaged)
    # torch itself loads it without complaint, with a wrong weight
    assert not torch.equal(torch.load(checkpoint_path, weights_only=True)['state_dict']['weight'],
                           intact)

    runner = runner_with(tmp_path, load_from=str(checkpoint_path), resume=True)
    before = {name: value.clone() for name, value in runner.model.state_dict().items()}
    with pytest.raises(DamagedCheckpointError,
                       match=r"epoch_1.pth' is damaged: its bytes do not match the SHA-256 "
                       r'checksum recorded when it was written .* use an intact copy or an '
                       r'earlier checkpoint'):
        runner.load_or_resume()
    assert all(torch.equal(value, before[name])
               for name, value in runner.model.state_dict().items())


@pytest.mark.usefixtures('loader')
@pytest.mark.parametrize('damage', ['truncated', 'empty', 'text', 'random bytes'])
def test_a_file_that_is_not_an_intact_checkpoint_is_refused(checkpoint_path, damage):
    data = checkpoint_path.read_bytes()
    checkpoint_path.write_bytes({
        'truncated': data[:len(data) * 2 // 3],
        'empty': b'',
        'text': b'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 1234\n',
        'random bytes': np.random.default_rng(0).bytes(4096),
    }[damage])
    with pytest.raises(DamagedCheckpointError,
                       match=r"epoch_1.pth' is not a readable torch checkpoint"):
        load_torch_file(str(checkpoint_path))


@pytest.mark.usefixtures('loader')
def test_files_without_a_checksum_still_load(tmp_path):
    """Older runs and the published release weights have none."""
    path = tmp_path / 'release.pth'
    torch.save({'model': nn.Linear(2, 2).state_dict()}, path)
    assert not verify_checksum(str(path))
    assert set(load_torch_file(str(path))['model']) == {'weight', 'bias'}


# --------------------------------------------------------------------------- failed writes


class FailingFile(io.FileIO):
    """Writes half of what it is given, then fails as a full disk does."""

    def write(self, data):
        super().write(bytes(data)[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_disk(monkeypatch):
    import mmdsnet.checkpoint as checkpoint
    monkeypatch.setattr(checkpoint, 'open', lambda path, mode: FailingFile(path, 'w'),
                        raising=False)


def io_error_on_flush(monkeypatch):

    def fail(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, 'fsync', fail)


def read_only_directory(monkeypatch):
    import mmdsnet.checkpoint as checkpoint

    def refuse(path, mode):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(checkpoint, 'open', refuse, raising=False)


@pytest.mark.parametrize('fault,code', [(full_disk, errno.ENOSPC), (io_error_on_flush, errno.EIO),
                                        (read_only_directory, errno.EACCES)],
                         ids=['ENOSPC', 'EIO', 'EACCES'])
def test_a_failed_checkpoint_write_keeps_the_previous_one_and_names_path_and_cause(
        checkpoint_path, monkeypatch, fault, code):
    from mmengine.runner.checkpoint import save_checkpoint
    before = checkpoint_path.read_bytes()
    fault(monkeypatch)
    with pytest.raises(OSError) as error:
        save_checkpoint({'state_dict': {'weight': torch.zeros(2)}}, str(checkpoint_path))
    monkeypatch.undo()
    assert error.value.errno == code
    assert str(error.value).startswith(
        f"[Errno {code}] could not write '{checkpoint_path}': {os.strerror(code)}. The file is "
        'as it was before this write, and no partial file is left.')
    assert checkpoint_path.read_bytes() == before
    assert os.listdir(checkpoint_path.parent) == ['epoch_1.pth']


def test_load_pretrained_strictly_drops_ddp_prefix_and_names_what_does_not_fit(tmp_path):
    source = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    path = tmp_path / 'ddp.pth'
    torch.save({'state_dict': {f'module.0.{key}': value
                               for key, value in source[0].state_dict().items()}}, path)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    load_pretrained_strictly(model, str(path), optional_prefixes=('1.', ))
    assert torch.equal(model[0].weight, source[0].weight)
    with pytest.raises(ValueError, match=r'ddp.pth \(prefix None\) does not fit two linears:\n'
                       r'  missing: 1.bias, 1.weight\n'):
        load_pretrained_strictly(model, str(path), description='two linears')
