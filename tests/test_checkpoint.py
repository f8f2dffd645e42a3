"""Weight files never run code: crafted pickles are refused on every loading path we use.
Checkpoints record a checksum that loading verifies, and are written atomically."""
import argparse
import errno
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner, load_checkpoint

from mmdsnet.checkpoint import (DamagedCheckpointError, UnsafeCheckpointError, load_pdparams,
                                load_pretrained_strictly, load_torch_file, save_torch_file,
                                verify_checksum)


def assert_refused(load, marker):
    with pytest.raises(UnsafeCheckpointError) as error:
        load()
    assert 'crafted' in str(error.value) and 'system' in str(error.value)
    assert not marker.exists(), 'the crafted pickle ran its code'


def test_load_torch_file_refuses_code(crafted_pth, marker):
    assert_refused(lambda: load_torch_file(crafted_pth), marker)


def test_mmengine_load_checkpoint_refuses_code(crafted_pth, marker):
    assert_refused(lambda: load_checkpoint(nn.Linear(2, 2), crafted_pth), marker)


def runner_with(tmp_path, **kwargs):
    return Runner(model=nn.Linear(2, 2), work_dir=str(tmp_path / 'work'), default_scope='mmengine',
                  **kwargs)


def test_runner_load_from_refuses_code(crafted_pth, marker, tmp_path):
    runner = runner_with(tmp_path, load_from=crafted_pth)
    assert_refused(runner.load_or_resume, marker)


def test_runner_resume_refuses_code(crafted_pth, marker, tmp_path):
    runner = runner_with(tmp_path, load_from=crafted_pth, resume=True)
    assert_refused(runner.load_or_resume, marker)


def test_deit_style_checkpoint_with_argparse_namespace_loads(tmp_path):
    path = tmp_path / 'deit_style.pth'
    args = argparse.Namespace(model='dsnet_small', lr=5e-4, drop_path=0.1)
    torch.save({'model': nn.Linear(2, 2).state_dict(), 'epoch': 299, 'args': args}, path)
    loaded = load_torch_file(str(path))
    assert loaded['args'] == args and loaded['epoch'] == 299


def test_numpy_values_load(tmp_path):
    path = tmp_path / 'numpy.pth'
    torch.save({'array': np.arange(3.), 'scalar': np.float64(0.5), 'int': np.int64(3)}, path)
    loaded = load_torch_file(str(path))
    np.testing.assert_array_equal(loaded['array'], np.arange(3.))
    assert loaded['scalar'] == 0.5 and loaded['int'] == 3


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
