"""mmdsnet.compat.numpy_core_move: ``.pdparams`` files pickled under numpy 1
(``numpy.core.multiarray``) and numpy 2 (``numpy._core.multiarray``) both load, whichever numpy
is installed."""
import pickle

import numpy as np
import pytest

from mmdsnet.checkpoint import load_pdparams
from mmdsnet.compat.numpy_core_move import current_module_name
from mmdsnet.compat.versions import NUMPY

SPELLINGS = {'numpy 1': b'numpy.core.multiarray', 'numpy 2': b'numpy._core.multiarray'}


@pytest.mark.parametrize('written_under', list(SPELLINGS))
def test_pdparams_from_either_numpy_load(tmp_path, written_under):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = pickle.dumps({'fc.weight': array}, protocol=2)
    for spelling in SPELLINGS.values():  # protocol 2 names globals as newline-ended text
        data = data.replace(spelling + b'\n', SPELLINGS[written_under] + b'\n')
    assert SPELLINGS[written_under] in data
    path = tmp_path / 'model.pdparams'
    path.write_bytes(data)
    np.testing.assert_array_equal(load_pdparams(str(path))['fc.weight'], array)


def test_module_names_map_to_the_installed_numpy():
    installed = 'numpy._core' if NUMPY >= (2, 0) else 'numpy.core'
    for name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        assert current_module_name(name) == f'{installed}.multiarray'
