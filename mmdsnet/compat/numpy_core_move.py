"""numpy 2 moved ``numpy.core`` to ``numpy._core``; weight files pickled under either name it.

Needed on: numpy 1 and 2 alike, because files written under one are read under the other. The
allowlists of :mod:`mmdsnet.checkpoint` name numpy's reconstruction functions through
:data:`multiarray`, and map a pickle's module name with :func:`current_module_name`.
Reproduced by ``tests/compat/test_numpy_core_move.py``.
"""
from .versions import NUMPY

if NUMPY >= (2, 0):
    from numpy._core import multiarray
else:  # numpy 1.26's numpy._core is a partial alias, without multiarray until imported
    from numpy.core import multiarray

__all__ = ['current_module_name', 'multiarray']


def current_module_name(module: str) -> str:
    """The module that a pickle's ``numpy.core...`` or ``numpy._core...`` means here."""
    if NUMPY >= (2, 0):
        return module.replace('numpy.core', 'numpy._core', 1)
    return module.replace('numpy._core', 'numpy.core', 1)
