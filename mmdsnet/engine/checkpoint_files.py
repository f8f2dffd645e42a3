"""Checkpoint files that survive crashes and show damage: atomic writes and SHA-256 checksums.

MMEngine writes checkpoints in place (``open(path, 'wb')``), so a job killed while saving left a
truncated ``epoch_N.pth`` that ``--resume`` then picked up, and nothing in a checkpoint told a
damaged file (bit rot, a truncated copy) from an intact one. Here every file is written to a
temporary file that is renamed into place (:func:`write_bytes_atomically`), and every checkpoint
(:func:`save_torch_file`) records the SHA-256 of its bytes in the zip comment at its end, where
``torch.load`` and any zip reader ignore it; :func:`verify_checksum` checks it, and
:func:`mmdsnet.checkpoint.load_torch_file` does so before unpickling anything.

:func:`use_for_mmengine_checkpoints`, called by ``import mmdsnet``, makes MMEngine's local file
writes and its ``save_checkpoint`` (the Runner's and ``CheckpointHook``'s) go through them; the
preemption hook writes its files with :func:`write_bytes_atomically` as well.
"""
import contextlib
import hashlib
import io
import os
import os.path as osp
from typing import Any, BinaryIO, Optional

import torch


class DamagedCheckpointError(ValueError):
    """A weight file is not an intact checkpoint: changed since it was written, truncated, or
    not a checkpoint at all."""


# A torch checkpoint is a zip archive, which ends with a 22-byte "end of central directory"
# record whose last two bytes give the length of an archive comment that follows it.
_END_OF_ZIP = b'PK\x05\x06'
_END_OF_ZIP_SIZE = 22
_CHECKSUM_TAG = b'mmdsnet-sha256:'
_CHECKSUM_COMMENT_SIZE = len(_CHECKSUM_TAG) + 64


def _stamp_checksum(buffer: io.BytesIO, filename: str) -> None:
    """Append the SHA-256 of the archive ``torch.save`` wrote into ``buffer`` as its comment."""
    data = buffer.getbuffer()
    if data[-_END_OF_ZIP_SIZE:-_END_OF_ZIP_SIZE + 4] != _END_OF_ZIP or data[-2:] != b'\0\0':
        raise ValueError(f'cannot record a checksum in {filename!r}: torch.save did not write '
                         'a zip archive without comment (was _use_new_zipfile_serialization '
                         'turned off?)')
    comment = _CHECKSUM_TAG + hashlib.sha256(data).hexdigest().encode()
    del data  # a BytesIO cannot be written to while a view of it exists
    buffer.seek(-2, io.SEEK_END)
    buffer.write(len(comment).to_bytes(2, 'little') + comment)


def _recorded_checksum(file: BinaryIO, size: int) -> Optional[str]:
    """The SHA-256 that :func:`_stamp_checksum` recorded at the end of ``file``, if any."""
    if size < _END_OF_ZIP_SIZE + _CHECKSUM_COMMENT_SIZE:
        return None
    file.seek(size - _END_OF_ZIP_SIZE - _CHECKSUM_COMMENT_SIZE)
    end, comment = file.read(_END_OF_ZIP_SIZE), file.read()
    if (end[:4] != _END_OF_ZIP or int.from_bytes(end[-2:], 'little') != _CHECKSUM_COMMENT_SIZE
            or not comment.startswith(_CHECKSUM_TAG)):
        return None
    return comment[len(_CHECKSUM_TAG):].decode('ascii', errors='replace')


def verify_checksum(filename: str) -> bool:
    """Check a file against the checksum it records; ``False`` when it records none.

    The checksum covers every byte ``torch.save`` wrote, that is the file with the comment that
    holds the checksum taken off again.

    Raises:
        DamagedCheckpointError: The file's bytes do not match its checksum.
    """
    with open(filename, 'rb') as file:
        size = os.fstat(file.fileno()).st_size
        recorded = _recorded_checksum(file, size)
        if recorded is None:
            return False
        digest = hashlib.sha256()
        file.seek(0)
        remaining = size - _CHECKSUM_COMMENT_SIZE - 2  # up to the comment length field
        while remaining > 0:
            chunk = file.read(min(remaining, 1 << 20))
            if not chunk:  # shortened while being read: the digest cannot match
                break
            digest.update(chunk)
            remaining -= len(chunk)
        digest.update(b'\0\0')  # the comment length torch.save wrote
    if digest.hexdigest() != recorded:
        raise DamagedCheckpointError(
            f'{filename!r} is damaged: its bytes do not match the SHA-256 checksum recorded when '
            f'it was written (recorded {recorded[:16]}..., now {digest.hexdigest()[:16]}...). It '
            'changed after it was saved (bit rot, a disk or network error, an interrupted copy). '
            'Nothing was loaded from it; use an intact copy or an earlier checkpoint '
            '(--resume PATH).')
    return True


def write_bytes_atomically(data: bytes, filename: str) -> None:
    """Write ``data`` to a temporary file beside ``filename``, then rename it into place.

    A crash or kill during the write leaves the previous file (or none), never a truncated one.
    A failed write (disk full, I/O error, no permission) raises an ``OSError`` of the same errno
    naming ``filename`` and the cause, with the previous file untouched and the temporary file
    removed.
    """
    directory = osp.dirname(osp.abspath(filename))
    tmp = osp.join(directory, f'.{osp.basename(filename)}.{os.getpid()}.tmp')
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, 'wb') as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, filename)
    except OSError as err:
        raise OSError(
            err.errno, f'could not write {filename!r}: {err.strerror or err}. The file is as it '
            'was before this write, and no partial file is left. Free space on that disk or fix '
            'its permissions, then run again (training: --resume continues from the last '
            'checkpoint written)') from err
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def save_torch_file(obj: Any, filename: str) -> None:
    """``torch.save`` ``obj`` to ``filename`` atomically (see :func:`write_bytes_atomically`),
    recording the checksum of the bytes that :func:`load_torch_file` verifies."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _stamp_checksum(buffer, filename)
    write_bytes_atomically(buffer.getbuffer(), filename)


def use_for_mmengine_checkpoints() -> None:
    """Route MMEngine's local file writes through :func:`write_bytes_atomically`, and its
    ``save_checkpoint`` of local files through :func:`save_torch_file`; safe to call again."""
    import mmengine.runner
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.fileio import LocalBackend, get_file_backend

    save_elsewhere = checkpoint_module.save_checkpoint
    if save_elsewhere.__module__ == __name__:
        return

    def put(self, obj, filepath):
        write_bytes_atomically(obj, str(filepath))

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        local = (file_client_args is None and not str(filename).startswith('pavi://')
                 and isinstance(get_file_backend(filename, backend_args=backend_args),
                                LocalBackend))
        if local:
            save_torch_file(checkpoint, str(filename))
        else:
            save_elsewhere(checkpoint, filename, file_client_args, backend_args)

    LocalBackend.put = put
    # the Runner and CheckpointHook call it through these names
    for module in (checkpoint_module, runner_module, mmengine.runner):
        module.save_checkpoint = save_checkpoint
