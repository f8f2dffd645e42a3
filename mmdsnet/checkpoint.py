"""Safe loading of weight files: torch pickles and PaddlePaddle ``.pdparams``.

A ``.pth`` file is a pickle, and unpickling can run any code the file names. Since torch 2.6,
``torch.load`` defaults to ``weights_only=True``: only tensors, plain containers and
allowlisted classes are rebuilt. MMEngine's answer upstream was to switch that off; we keep it on
and allowlist exactly what the files we read contain beyond tensors:

- MMEngine Runner checkpoints: the message hub's ``HistoryBuffer`` objects, the numpy arrays
  and scalars they and the runtime info hold, and the buffers' statistics methods, which MMEngine
  pickles as ``getattr(HistoryBuffer, 'mean')``: ``getattr`` resolves to
  :func:`history_buffer_method`, which looks up nothing else;
- the DSNet authors' DeiT-style checkpoints: the training ``argparse.Namespace`` under ``args``.

torch < 2.6 cannot take that allowlist (``safe_globals`` with ``getattr`` renamed), so there
:func:`load_torch_file` hands ``torch.load`` :class:`AllowlistUnpickler` as its pickle module:
it rebuilds the same objects that ``weights_only=True`` and the allowlist rebuild on today's
torch, under the same rules, and refuses everything else with the same error. It is never
``weights_only=False`` with Python's own unpickler.

PaddleClas ``.pdparams`` files are pickles of numpy arrays; :func:`load_pdparams` reads them
with an unpickler that rebuilds numpy arrays and nothing else.

Every refusal raises :class:`UnsafeCheckpointError` naming the file and what was refused;
nothing here falls back to unrestricted unpickling.

Files are written atomically (:func:`write_bytes_atomically`), and every checkpoint written here
(:func:`save_torch_file`, which MMEngine's checkpoint saving goes through after
``import mmdsnet``) records the SHA-256 of its bytes in the zip comment at its end, where
``torch.load`` and any zip reader ignore it; :func:`load_torch_file` checks it before
unpickling anything and raises :class:`DamagedCheckpointError` on a mismatch.

:func:`load_pretrained_strictly` is what DSNet's ``init_cfg=dict(type='Pretrained')`` runs: it
loads a checkpoint into a model and raises, listing the keys, where the two do not fit.
"""
import _compat_pickle
import argparse
import codecs
import collections
import contextlib
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import struct
import types
import zipfile
from typing import Any, BinaryIO, Dict, Optional, Tuple

import numpy as np
import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A weight file asks to rebuild an object that is not on the allowlist."""


class DamagedCheckpointError(ValueError):
    """A weight file is not an intact checkpoint: changed since it was written, truncated, or
    not a checkpoint at all."""


def _numpy_globals():
    """The numpy callables and classes a pickle of arrays and scalars refers to."""
    if np.lib.NumpyVersion(np.__version__) >= '2.0.0':  # numpy 2 moved numpy.core here
        from numpy._core import multiarray
    else:  # numpy 1.26's numpy._core is a partial alias, without multiarray until imported
        from numpy.core import multiarray
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')
    ]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


def history_buffer_method(owner, name):
    """What ``getattr`` means inside a weight file: a statistics method of ``HistoryBuffer``."""
    from mmengine.logging import HistoryBuffer
    statistics = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in statistics:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'getattr({owner!r}, {name!r}) is not allowed in a weight file; only statistics '
        'methods of HistoryBuffer are')


def checkpoint_safe_globals():
    """The allowlist given to ``torch.load(weights_only=True)`` for every file we read."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, argparse.Namespace, (history_buffer_method, 'builtins.getattr'),
            *_numpy_globals()]


def _allowlist_by_name():
    """Name in a pickle to object, for :class:`AllowlistUnpickler`: what ``weights_only=True``
    allows on this torch, the plain-data globals that torch 2.6+ allows beyond torch 2.1's, and
    :func:`checkpoint_safe_globals`."""
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = dict(_get_allowed_globals())
    dtypes = {value for value in vars(torch).values() if isinstance(value, torch.dtype)}
    for entry in (*dtypes, torch.device, collections.Counter, collections.OrderedDict, set,
                  bytearray, complex, (codecs.encode, '_codecs.encode'),
                  *checkpoint_safe_globals()):
        if isinstance(entry, tuple):
            allowed[entry[1]] = entry[0]
        elif isinstance(entry, torch.dtype):
            allowed[str(entry)] = entry
        else:
            allowed[f'{entry.__module__}.{entry.__qualname__}'] = entry
    return allowed


def _unsupported_opcode(code):
    """A handler that refuses opcode ``code`` as torch's weights-only unpickler does."""

    def refuse(unpickler):
        raise pickle.UnpicklingError(f'Unsupported operand {code}')

    return refuse


class AllowlistUnpickler(pickle._Unpickler):
    """The rules of today's ``torch.load(weights_only=True)`` with :func:`checkpoint_safe_globals`,
    for a torch that cannot take that allowlist (< 2.6); passed as ``torch.load``'s pickle module.

    Globals are looked up in :func:`_allowlist_by_name` only; only those objects may be called
    (``REDUCE``) or instantiated (``NEWOBJ``), only instances of those classes may have their
    state set (``BUILD``), items go into plain lists, dicts and sets only, and the only persistent
    ids are torch storages. A global outside the allowlist raises :class:`UnsafeCheckpointError`;
    an opcode that torch's weights-only unpickler does not support and that could reach other
    objects (``INST``, ``OBJ``, ``NEWOBJ_EX``, ``EXT*``, ``PERSID``) raises ``Unsupported
    operand``, as it does there. Python's own unpickler (``pickle._Unpickler``) reads the rest.
    """

    dispatch = {**pickle._Unpickler.dispatch,
                **{opcode[0]: _unsupported_opcode(opcode[0])
                   for opcode in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX, pickle.EXT1,
                                  pickle.EXT2, pickle.EXT4, pickle.PERSID)}}

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.allowed = _allowlist_by_name()
        self.allowed_ids = {id(obj) for obj in self.allowed.values()}

    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle and torch map them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full_name = f'{module}.{name}'
        if full_name not in self.allowed:
            raise UnsafeCheckpointError(
                f'Unsupported global: GLOBAL {full_name} was not an allowed global by default')
        return self.allowed[full_name]

    def _is_allowed(self, obj):
        return id(obj) in self.allowed_ids

    def _reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not self._is_allowed(func):
            raise UnsafeCheckpointError(f'Trying to call reduce for unrecognized function {func}')
        self.stack[-1] = func(*args)

    def _newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is torch.nn.Parameter:
            self.append(torch.nn.Parameter(*args))
        elif self._is_allowed(cls):
            self.append(cls.__new__(cls, *args))
        else:
            raise UnsafeCheckpointError('Can only create new object for nn.Parameter or classes '
                                        f'allowlisted via `add_safe_globals` but got {cls}')

    def _build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is torch.Tensor:
            inst.set_(*state)
        elif type(inst) is torch.nn.Parameter:
            inst.__setstate__(state)
        elif type(inst) is collections.OrderedDict:
            inst.__dict__.update(state)
        elif self._is_allowed(type(inst)):
            if hasattr(inst, '__setstate__'):
                inst.__setstate__(state)
            else:
                slotstate = None
                if isinstance(state, tuple) and len(state) == 2:
                    state, slotstate = state
                if state:
                    inst.__dict__.update(state)
                for key, value in (slotstate or {}).items():
                    setattr(inst, key, value)
        else:
            raise UnsafeCheckpointError(
                'Can only build Tensor, Parameter, OrderedDict or types allowlisted via '
                f'`add_safe_globals`, but got {type(inst)}')

    def _check_target(self, target, types, what):
        if type(target) not in types:
            raise UnsafeCheckpointError(f'Can only {what} for {types}, but got {type(target)}')

    def _append(self):
        self._check_target(self.stack[-2], (list, ), 'APPEND')
        pickle._Unpickler.load_append(self)

    def _appends(self):
        self._check_target(self.metastack[-1][-1], (list, ), 'APPENDS')
        pickle._Unpickler.load_appends(self)

    def _setitem(self):
        self._check_target(self.stack[-3], (dict, collections.OrderedDict, collections.Counter),
                           'SETITEM')
        pickle._Unpickler.load_setitem(self)

    def _setitems(self):
        self._check_target(self.metastack[-1][-1],
                           (dict, collections.OrderedDict, collections.Counter), 'SETITEMS')
        pickle._Unpickler.load_setitems(self)

    def _additems(self):
        self._check_target(self.metastack[-1][-1], (set, ), 'ADDITEMS')
        pickle._Unpickler.load_additems(self)

    def _binpersid(self):
        pid = self.stack[-1]
        if type(pid) is not tuple and type(pid) is not int:
            raise UnsafeCheckpointError(
                f'persistent_load id must be tuple or int, but got {type(pid)}')
        if type(pid) is tuple and pid and torch.serialization._maybe_decode_ascii(
                pid[0]) != 'storage':
            raise UnsafeCheckpointError(
                f'Only persistent_load of storage is allowed, but got {pid[0]!r}')
        pickle._Unpickler.load_binpersid(self)

    dispatch.update({
        pickle.REDUCE[0]: _reduce, pickle.NEWOBJ[0]: _newobj, pickle.BUILD[0]: _build,
        pickle.APPEND[0]: _append, pickle.APPENDS[0]: _appends, pickle.SETITEM[0]: _setitem,
        pickle.SETITEMS[0]: _setitems, pickle.ADDITEMS[0]: _additems,
        pickle.BINPERSID[0]: _binpersid})


# What torch.load(pickle_module=...) uses: Unpickler, and load for the legacy format's headers.
allowlist_pickle_module = types.SimpleNamespace(
    __name__='mmdsnet.checkpoint.allowlist_pickle_module', Unpickler=AllowlistUnpickler,
    load=lambda file, **kwargs: AllowlistUnpickler(file, **kwargs).load())

# torch.load(weights_only=True) takes ``safe_globals`` with (object, name) pairs from torch 2.6 on.
TORCH_TAKES_NAMED_SAFE_GLOBALS = torch.__version__ >= '2.6'


def load_torch_file(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a torch pickle with ``weights_only=True`` and the checkpoint allowlist.

    On torch < 2.6 the same allowlist is enforced by :class:`AllowlistUnpickler`. A file that
    records a checksum (:func:`save_torch_file`) is verified first, so a damaged one is refused
    before anything is unpickled or any weights are touched; files without one (older runs,
    release weights) load as they are.

    Args:
        filename (str): Path of a ``.pth`` file (``~`` is expanded).
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file needs an object outside the allowlist.
        DamagedCheckpointError: The file does not match its checksum, or is not a torch
            checkpoint (truncated or another format). A ``ValueError``.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    verify_checksum(filename)
    try:
        if TORCH_TAKES_NAMED_SAFE_GLOBALS:
            with torch.serialization.safe_globals(checkpoint_safe_globals()):
                return torch.load(filename, map_location=map_location, weights_only=True)
        _refuse_torchscript(filename)
        return torch.load(filename, map_location=map_location,
                          pickle_module=allowlist_pickle_module)
    except UnsafeCheckpointError as err:  # raised by AllowlistUnpickler
        raise _refusal(filename, str(err)) from None
    except pickle.UnpicklingError as err:
        not_a_pickle = re.search(r'Unsupported operand \d+', str(err))
        if 'Weights only load failed' not in str(err) or not_a_pickle:
            raise DamagedCheckpointError(
                f'{filename!r} is not a readable torch checkpoint (truncated or another format): '
                f'{not_a_pickle.group() if not_a_pickle else err}') from None
        raise _refusal(filename, _refusal_reason(str(err))) from None
    # torch's zip reader: EINVAL when cut off; the rest: AllowlistUnpickler on a broken pickle
    except (RuntimeError, EOFError, OSError, IndexError, KeyError, TypeError, ValueError,
            struct.error) as err:
        raise DamagedCheckpointError(f'{filename!r} is not a readable torch checkpoint '
                                     f'(truncated or another format): {err}') from None


def _refusal(filename: str, reason: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'refused to load {filename!r}: {reason}. Loading it would require unpickling an '
        'object that mmdsnet does not allow in weight files, which could run arbitrary code. '
        'If you wrote this file yourself and trust it, re-save its tensors as a plain '
        'state dict.')


def _refuse_torchscript(filename: str) -> None:
    """torch < 2.6 hands a TorchScript archive to ``torch.jit.load`` whatever the pickle module;
    today's ``weights_only=True`` refuses it, and so does this."""
    if not zipfile.is_zipfile(filename):
        return
    with zipfile.ZipFile(filename) as archive:
        if any(name.endswith('/constants.pkl') for name in archive.namelist()):
            raise DamagedCheckpointError(
                f'{filename!r} is not a readable torch checkpoint (truncated or another format): '
                'it is a TorchScript archive, which holds code; load it with torch.jit.load if '
                'you trust it')


def _refusal_reason(message: str) -> str:
    """The line of torch's weights-only error that says what was refused, without its advice
    to allowlist the global or to turn ``weights_only`` off."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reason = lines[1] if len(lines) > 1 else lines[0]
    return reason.split('. Please use')[0].rstrip('.')


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and scalars, bytes and ordered dicts; refuses every other global."""

    _ALLOWED = {
        ('collections', 'OrderedDict'),
        ('_codecs', 'encode'),  # how protocol-2 pickles spell bytes
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
    }

    def __init__(self, file, filename):
        super().__init__(file)
        self.filename = filename

    def find_class(self, module, name):
        dtype_class = module == 'numpy.dtypes' and name.endswith('DType')
        if (module, name) in self._ALLOWED or dtype_class:
            if hasattr(np, '_core'):  # numpy 2 moved numpy.core; old pickles still name it
                module = module.replace('numpy.core', 'numpy._core')
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f'refused to load {self.filename!r}: it asks to rebuild {module}.{name}, but a '
            '.pdparams file may only hold numpy arrays; loading it could run arbitrary code')


def load_pdparams(filename: str) -> Dict[str, np.ndarray]:
    """Read a PaddlePaddle ``.pdparams`` state dict without Paddle and without unsafe unpickling.

    Args:
        filename (str): Path of the file.

    Returns:
        dict[str, numpy.ndarray]: Parameter name to array. Paddle's bookkeeping entry
        ``StructuredToParameterName@@`` is dropped.

    Raises:
        FileNotFoundError, UnsafeCheckpointError, ValueError (not a state dict of arrays).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    with open(filename, 'rb') as file:
        try:
            state = _NumpyOnlyUnpickler(file, filename).load()
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
            if isinstance(err, UnsafeCheckpointError):
                raise
            raise ValueError(f'{filename!r} is not a readable .pdparams file: {err}') from None
    if not isinstance(state, dict):
        raise ValueError(f'{filename!r} holds a {type(state).__name__}, not a state dict')
    state.pop('StructuredToParameterName@@', None)
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in 'fiub':
            raise ValueError(f'{filename!r}: entry {key!r} is not a numeric array '
                             f'({type(value).__name__})')
    return state


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


def load_pretrained_strictly(model: torch.nn.Module, checkpoint: str, prefix: Optional[str] = None,
                             map_location: Any = 'cpu',
                             optional_prefixes: Tuple[str, ...] = (),
                             description: Optional[str] = None) -> None:
    """Load ``checkpoint`` (with ``prefix`` stripped) into ``model``, refusing any misfit.

    MMEngine's ``init_cfg=dict(type='Pretrained')`` only warns about missing, unexpected and
    mis-shaped keys and trains on with whatever fitted, so a checkpoint of another arch went
    unnoticed; this raises instead. A leading ``module.`` (DDP) is dropped from every key.

    Args:
        model (nn.Module): The module to load into.
        checkpoint (str): Path or URL, read by MMEngine's loader (after ``import mmdsnet``,
            local files through :func:`load_torch_file`, and the public releases' ``.pth`` and
            ``.pdparams`` converted to a classifier checkpoint on the way).
        prefix (str, optional): Only keys starting with it are loaded, without it (e.g.
            ``'backbone.'`` for a classifier checkpoint). Defaults to None: the
            ``backbone_prefix`` that the checkpoint's meta names (release weights, converted),
            else all keys, from the file's ``state_dict`` entry when it has one.
        map_location: Passed to the loader. Defaults to ``'cpu'``.
        optional_prefixes (tuple[str]): Model keys that may be absent from the checkpoint
            (parts added for another task, which keep their initialisation).
        description (str, optional): How the error names the model. Defaults to its class name.

    Raises:
        ValueError: The file holds no state dict, or keys are missing, unexpected or of another
            shape (listing up to 8 of each).
    """
    # MMEngine is imported here, not above: mmdsnet.compat imports this module before it has
    # applied the fixes that MMEngine's import needs on today's setuptools.
    from mmengine.runner import CheckpointLoader
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location)
    if not isinstance(loaded, dict):
        raise ValueError(f'{checkpoint} holds a {type(loaded).__name__}, not a checkpoint or a '
                         'state dict')
    state_dict = loaded.get('state_dict', loaded)
    prefix = prefix or (loaded.get('meta') or {}).get('backbone_prefix')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = {key[len(prefix):]: value for key, value in state_dict.items()
                      if key.startswith(prefix)}
    state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
    own = model.state_dict()
    missing = sorted(key for key in own
                     if key not in state_dict and not key.startswith(optional_prefixes))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [f'{key}: checkpoint {tuple(state_dict[key].shape)} != model '
                  f'{tuple(value.shape)}' for key, value in own.items()
                  if key in state_dict and state_dict[key].shape != value.shape]
    if missing or unexpected or mismatched:
        def listing(title, keys):
            more = f', ... ({len(keys)} in all)' if len(keys) > 8 else ''
            shown = ', '.join(keys[:8]) + more
            return f'\n  {title}: {shown}' if keys else ''
        raise ValueError(
            f'{checkpoint} (prefix {prefix!r}) does not fit '
            f'{description or type(model).__name__}:' + listing('missing', missing) +
            listing('unexpected', unexpected) + listing('shape mismatch', mismatched) +
            '\n  Check the arch, and the prefix: a classifier checkpoint needs prefix="backbone." '
            "(the releases' .pth and .pdparams files load as they are, with or without it)")
    model.load_state_dict(state_dict, strict=False)
