"""A checkpoint write that is killed or fails (full disk) keeps the previous checkpoint, and
``--resume`` from it ends with the uninterrupted weights."""
import errno
import signal

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.engine.checkpoint_files import verify_checksum


def assert_epoch_1_is_the_last_checkpoint(work_dir):
    assert not (work_dir / 'epoch_2.pth').exists()
    latest = (work_dir / 'last_checkpoint').read_text().strip()
    assert latest == str(work_dir / 'epoch_1.pth')
    assert verify_checksum(latest)
    assert load_torch_file(latest)['meta']['epoch'] == 1


def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(train_toy, tmp_path):
    """SIGKILL after the new checkpoint's bytes are written, before they are renamed."""
    killer = ('import os, signal\n'
              'import mmdsnet.engine.checkpoint_files as checkpoint\n'
              'real_replace = os.replace\n'
              'def replace(src, dst):\n'
              "    if dst.endswith('epoch_2.pth'):\n"
              '        os.kill(os.getpid(), signal.SIGKILL)\n'
              '    real_replace(src, dst)\n'
              'checkpoint.os.replace = replace\n')
    run = train_toy(tmp_path, prelude=killer)
    assert run.returncode == -signal.SIGKILL, run.output[-2000:]
    assert_epoch_1_is_the_last_checkpoint(tmp_path)


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(
        train_toy, uninterrupted, tmp_path):
    """ENOSPC after part of epoch 2's checkpoint is written; then space is freed and the run
    resumed."""
    full_disk = ('import errno, io\n'
                 'import mmdsnet.engine.checkpoint_files as checkpoint\n'
                 'class FullDisk(io.FileIO):\n'
                 '    def write(self, data):\n'
                 '        super().write(bytes(data)[:len(data) // 2])\n'
                 '        raise OSError(errno.ENOSPC, "No space left on device")\n'
                 'def open_(path, mode="r", *args, **kwargs):\n'
                 '    if "epoch_2.pth" in path and "w" in mode:\n'
                 '        return FullDisk(path, "w")\n'
                 '    return open(path, mode, *args, **kwargs)\n'
                 'checkpoint.open = open_\n')
    failed = train_toy(tmp_path, prelude=full_disk)
    assert failed.returncode == 1, failed.output[-2000:]
    error = failed.output.strip().splitlines()[-1]
    assert error.startswith(f'OSError: [Errno {errno.ENOSPC}] could not write '
                            f"'{tmp_path / 'epoch_2.pth'}': No space left on device"), error
    assert_epoch_1_is_the_last_checkpoint(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir() if 'pth' in path.name) == [
        'epoch_1.pth'], 'the partial checkpoint was left behind'

    resumed = train_toy(tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.output[-2000:]
    assert 'resumed epoch: 1, iter: 4' in resumed.output
    assert resumed.final_weights() == uninterrupted
