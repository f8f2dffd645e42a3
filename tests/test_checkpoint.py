"""mmdsnet.checkpoint: weight files never run code. Crafted pickles are refused on every loading
path we use, both by torch's ``weights_only=True`` with our allowlist (torch >= 2.6) and by the
unpickler of mmdsnet.compat.torch_weights_only (older torch; tested here on every torch through
the ``loader`` fixture); release and DeiT-style files, numpy values and ``.pdparams`` load."""
import argparse
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner, load_checkpoint

from mmdsnet.checkpoint import UnsafeCheckpointError, load_pdparams, load_torch_file
from mmdsnet.engine.checkpoint_files import DamagedCheckpointError


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


@pytest.mark.usefixtures('loader')
def test_init_cfg_pretrained_refuses_code(crafted_pth, marker):
    from mmdsnet.models import DSNet
    model = DSNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=crafted_pth))
    assert_refused(model.init_weights, marker)
