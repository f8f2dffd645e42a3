"""mmdsnet.engine.checkpoint_files: checkpoints are written atomically (a crash, a kill or a
full disk leaves the previous file), record a checksum that any zip or torch reader ignores, and
a damaged or foreign file is refused before any weights are touched."""
import errno
import io
import os
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.engine.checkpoint_files import (DamagedCheckpointError, save_torch_file,
                                             verify_checksum)


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

    runner = Runner(model=nn.Linear(2, 2), work_dir=str(tmp_path / 'work'),
                    default_scope='mmengine', load_from=str(checkpoint_path), resume=True)
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
    import mmdsnet.engine.checkpoint_files as checkpoint
    monkeypatch.setattr(checkpoint, 'open', lambda path, mode: FailingFile(path, 'w'),
                        raising=False)


def io_error_on_flush(monkeypatch):

    def fail(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, 'fsync', fail)


def read_only_directory(monkeypatch):
    import mmdsnet.engine.checkpoint_files as checkpoint

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
