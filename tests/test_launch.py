"""mmdsnet.launch: config loading and the process group shared by the tools."""
import os

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmdsnet.compat.versions import TORCH
from mmdsnet.launch import distributed_session, load_config, shutdown_process_groups

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


def test_overrides_apply_and_work_dir_defaults_to_config_name():
    cfg = load_config(CONFIG, {'train_cfg.max_epochs': 3, 'model.backbone.with_cp': True})
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.backbone.with_cp is True
    assert cfg.work_dir == os.path.join('work_dirs', 'dsnet_tiny_digits')


def test_misspelled_top_level_key_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match=r"has no 'trian_cfg'; did you mean 'train_cfg'"):
        load_config(CONFIG, {'trian_cfg.max_epochs': 3})


def test_new_top_level_key_unlike_any_existing_one_is_allowed():
    assert load_config(CONFIG, {'find_unused_parameters': True}).find_unused_parameters


@pytest.fixture
def one_process_cpu_launch(monkeypatch, free_port):
    """The environment torchrun gives a single CPU process."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
                           MKL_NUM_THREADS='1').items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield load_config(CONFIG, launcher='pytorch')
    shutdown_process_groups()


def gloo_threads():
    names = (open(f'/proc/self/task/{task}/comm').read().strip()
             for task in os.listdir('/proc/self/task'))
    return [name for name in names if 'gloo' in name]


def train_a_step_with_ddp():
    runner = {'model': DistributedDataParallel(nn.Linear(2, 1))}
    runner['self'] = runner  # a Runner refers back to itself through its loops and hooks
    runner['model'](torch.ones(1, 2)).sum().backward()


def test_distributed_session_stops_the_gloo_threads_after_success(one_process_cpu_launch):
    cfg = one_process_cpu_launch
    with distributed_session(cfg):
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
        assert cfg.model_wrapper_cfg.device_ids is None
        if not gloo_threads() and TORCH < (2, 2):
            pytest.skip(f'torch {torch.__version__} does not name its gloo threads (2.14 does): '
                        'nothing here to see them stop')
        assert gloo_threads()
        train_a_step_with_ddp()
    assert not dist.is_initialized()
    # a gloo thread alive when Python shuts down can abort the process
    assert gloo_threads() == []


def test_distributed_session_leaves_the_group_alone_after_an_error(one_process_cpu_launch):
    with pytest.raises(RuntimeError, match='training failed'):
        with distributed_session(one_process_cpu_launch):
            raise RuntimeError('training failed')
    assert dist.is_initialized()
