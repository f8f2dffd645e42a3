"""``torch.load(weights_only=True)`` with an allowlist of extra globals, on torch 2.1 to today's.

Failures it fixes (``tests/compat/test_torch_weights_only.py`` reproduces both without it):

- torch >= 2.6 loads with ``weights_only=True`` by default, which refuses MMEngine's Runner
  checkpoints (their ``HistoryBuffer`` and numpy objects): ``--resume``, ``load_from`` and
  ``init_cfg`` Pretrained fail with ``Weights only load failed ... Unsupported global``.
  MMEngine's answer upstream was ``weights_only=False``; here the allowlist is passed instead.
- torch < 2.6 cannot take that allowlist (``safe_globals`` with renamed entries such as
  ``getattr`` came in 2.6), and MMEngine 0.10.7 loads with its default, unrestricted unpickling:
  a crafted checkpoint runs its code. There :class:`AllowlistUnpickler` rebuilds the same
  objects that ``weights_only=True`` and the allowlist rebuild on today's torch, under the same
  rules, and refuses everything else. It is never ``weights_only=False`` with Python's own
  unpickler.

:func:`load_with_allowlist` is what :func:`mmdsnet.checkpoint.load_torch_file` calls; the
allowlist itself is :func:`mmdsnet.checkpoint.checkpoint_safe_globals`.
"""
import _compat_pickle
import codecs
import collections
import pickle
import types
import zipfile
from typing import Any, Dict, Sequence

import torch

from .versions import TORCH

#: ``torch.load(weights_only=True)`` takes ``safe_globals`` with (object, name) pairs.
TORCH_TAKES_NAMED_SAFE_GLOBALS = TORCH >= (2, 6)
#: The ``__name__`` of the pickle module that :func:`load_with_allowlist` hands older torch.
ALLOWLIST_PICKLE_MODULE = 'mmdsnet.compat.torch_weights_only.allowlist_pickle_module'


class RefusedByAllowlist(pickle.UnpicklingError):
    """:class:`AllowlistUnpickler` met a global, call or opcode outside the allowlist."""


def load_with_allowlist(filename: str, map_location: Any, safe_globals: Sequence) -> Any:
    """``torch.load(filename, weights_only=True)`` that also allows ``safe_globals``.

    Raises:
        pickle.UnpicklingError: torch's own refusal (``Weights only load failed``, torch >=
            2.6), or :class:`RefusedByAllowlist` (older torch).
        ValueError: The file is a TorchScript archive (older torch would hand it to
            ``torch.jit.load`` whatever the pickle module; today's refuses it).
    """
    if TORCH_TAKES_NAMED_SAFE_GLOBALS:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(filename, map_location=map_location, weights_only=True)
    _refuse_torchscript(filename)
    return torch.load(filename, map_location=map_location,
                      pickle_module=allowlist_pickle_module(safe_globals))


def allowlist_pickle_module(safe_globals: Sequence) -> types.SimpleNamespace:
    """What ``torch.load(pickle_module=...)`` uses: ``Unpickler``, and ``load`` for the legacy
    format's headers, both enforcing the allowlist."""
    # torch subclasses the module's Unpickler, so the allowlist goes into a class of its own.
    unpickler = type('Unpickler', (AllowlistUnpickler, ), dict(safe_globals=tuple(safe_globals)))
    return types.SimpleNamespace(__name__=ALLOWLIST_PICKLE_MODULE, Unpickler=unpickler,
                                 load=lambda file, **kwargs: unpickler(file, **kwargs).load())


def _refuse_torchscript(filename: str) -> None:
    if not zipfile.is_zipfile(filename):
        return
    with zipfile.ZipFile(filename) as archive:
        if any(name.endswith('/constants.pkl') for name in archive.namelist()):
            raise ValueError('it is a TorchScript archive, which holds code; load it with '
                             'torch.jit.load if you trust it')


def _allowlist_by_name(safe_globals: Sequence) -> Dict[str, Any]:
    """Name in a pickle to object, for :class:`AllowlistUnpickler`: what ``weights_only=True``
    allows on this torch, the plain-data globals that torch 2.6+ allows beyond torch 2.1's, and
    ``safe_globals`` (objects, or (object, name) pairs)."""
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = dict(_get_allowed_globals())
    dtypes = {value for value in vars(torch).values() if isinstance(value, torch.dtype)}
    for entry in (*dtypes, torch.device, collections.Counter, collections.OrderedDict, set,
                  bytearray, complex, (codecs.encode, '_codecs.encode'),
                  *safe_globals):
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
    """The rules of today's ``torch.load(weights_only=True)`` with an allowlist, for a torch that
    cannot take that allowlist (< 2.6); handed to ``torch.load`` as its pickle module's unpickler.

    Globals are looked up in :func:`_allowlist_by_name` only; only those objects may be called
    (``REDUCE``) or instantiated (``NEWOBJ``), only instances of those classes may have their
    state set (``BUILD``), items go into plain lists, dicts and sets only, and the only persistent
    ids are torch storages. A global outside the allowlist raises :class:`RefusedByAllowlist`;
    an opcode that torch's weights-only unpickler does not support and that could reach other
    objects (``INST``, ``OBJ``, ``NEWOBJ_EX``, ``EXT*``, ``PERSID``) raises ``Unsupported
    operand``, as it does there. Python's own unpickler (``pickle._Unpickler``) reads the rest.
    """

    dispatch = {**pickle._Unpickler.dispatch,
                **{opcode[0]: _unsupported_opcode(opcode[0])
                   for opcode in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX, pickle.EXT1,
                                  pickle.EXT2, pickle.EXT4, pickle.PERSID)}}

    #: Allowed beyond what ``weights_only=True`` allows: objects, or (object, name) pairs.
    safe_globals: Sequence = ()

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.allowed = _allowlist_by_name(self.safe_globals)
        self.allowed_ids = {id(obj) for obj in self.allowed.values()}

    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle and torch map them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full_name = f'{module}.{name}'
        if full_name not in self.allowed:
            raise RefusedByAllowlist(
                f'Unsupported global: GLOBAL {full_name} was not an allowed global by default')
        return self.allowed[full_name]

    def _is_allowed(self, obj):
        return id(obj) in self.allowed_ids

    def _reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not self._is_allowed(func):
            raise RefusedByAllowlist(f'Trying to call reduce for unrecognized function {func}')
        self.stack[-1] = func(*args)

    def _newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is torch.nn.Parameter:
            self.append(torch.nn.Parameter(*args))
        elif self._is_allowed(cls):
            self.append(cls.__new__(cls, *args))
        else:
            raise RefusedByAllowlist('Can only create new object for nn.Parameter or classes '
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
            raise RefusedByAllowlist(
                'Can only build Tensor, Parameter, OrderedDict or types allowlisted via '
                f'`add_safe_globals`, but got {type(inst)}')

    def _check_target(self, target, types, what):
        if type(target) not in types:
            raise RefusedByAllowlist(f'Can only {what} for {types}, but got {type(target)}')

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
            raise RefusedByAllowlist(
                f'persistent_load id must be tuple or int, but got {type(pid)}')
        if type(pid) is tuple and pid and torch.serialization._maybe_decode_ascii(
                pid[0]) != 'storage':
            raise RefusedByAllowlist(
                f'Only persistent_load of storage is allowed, but got {pid[0]!r}')
        pickle._Unpickler.load_binpersid(self)

    dispatch.update({
        pickle.REDUCE[0]: _reduce, pickle.NEWOBJ[0]: _newobj, pickle.BUILD[0]: _build,
        pickle.APPEND[0]: _append, pickle.APPENDS[0]: _appends, pickle.SETITEM[0]: _setitem,
        pickle.SETITEMS[0]: _setitems, pickle.ADDITEMS[0]: _additems,
        pickle.BINPERSID[0]: _binpersid})
