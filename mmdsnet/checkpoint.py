"""Safe reading of weight files: torch pickles and PaddlePaddle ``.pdparams``.

A ``.pth`` file is a pickle, and unpickling can run any code the file names. Since torch 2.6,
``torch.load`` defaults to ``weights_only=True``: only tensors, plain containers and
allowlisted classes are rebuilt. MMEngine's answer upstream was to switch that off; we keep it on
and allowlist exactly what the files we read contain beyond tensors
(:func:`checkpoint_safe_globals`):

- MMEngine Runner checkpoints: the message hub's ``HistoryBuffer`` objects, the numpy arrays
  and scalars they and the runtime info hold, and the buffers' statistics methods, which MMEngine
  pickles as ``getattr(HistoryBuffer, 'mean')``: ``getattr`` resolves to
  :func:`history_buffer_method`, which looks up nothing else;
- the DSNet authors' DeiT-style checkpoints: the training ``argparse.Namespace`` under ``args``.

On torch < 2.6, which cannot take that allowlist, :mod:`mmdsnet.compat.torch_weights_only`
enforces the same rules. PaddleClas ``.pdparams`` files are pickles of numpy arrays;
:func:`load_pdparams` reads them with an unpickler that rebuilds numpy arrays and nothing else.
Every refusal raises :class:`UnsafeCheckpointError` naming the file and what was refused;
nothing here falls back to unrestricted unpickling. A checkpoint that records a checksum
(:mod:`mmdsnet.engine.checkpoint_files`) is verified before anything is unpickled.

What reads weight files: :mod:`mmdsnet.models.backbones.dsnet_weights` (release conversion,
strict pretrained loading, and MMEngine's loader for local and http(s) files), the Runner's
``--resume`` through it, and the converters in ``tools/model_converters``.
"""
import argparse
import os.path as osp
import pickle
import re
import struct
from typing import Any, Dict

import numpy as np

from mmdsnet.compat.numpy_core_move import current_module_name, multiarray
from mmdsnet.compat.torch_weights_only import RefusedByAllowlist, load_with_allowlist
from mmdsnet.engine.checkpoint_files import DamagedCheckpointError, verify_checksum


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A weight file asks to rebuild an object that is not on the allowlist."""


def _numpy_globals():
    """The numpy callables and classes a pickle of arrays and scalars refers to."""
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


def load_torch_file(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a torch pickle with ``weights_only=True`` and the checkpoint allowlist.

    On torch < 2.6 :mod:`mmdsnet.compat.torch_weights_only` enforces the same allowlist. A file
    that records a checksum (:mod:`mmdsnet.engine.checkpoint_files`) is verified first, so a
    damaged one is refused before anything is unpickled or any weights are touched; files
    without one (older runs, release weights) load as they are.

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
        return load_with_allowlist(filename, map_location, checkpoint_safe_globals())
    except RefusedByAllowlist as err:  # torch < 2.6
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
            return super().find_class(current_module_name(module), name)
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
