"""mmdsnet.compat.mmengine_cpu_launcher: MMEngine's pytorch launcher fails on a machine without
a GPU upstream (reproduced in a fresh interpreter), and the shim starts a gloo group and has the
Runner wrap the model in DDP without device ids."""
import pytest
import torch

WITHOUT_CUDA = ('import torch\n'
                'torch.cuda.is_available = lambda: False\n')


@pytest.fixture
def torchrun_environment(monkeypatch, free_port):
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the failure needs a machine without GPU')
@pytest.mark.usefixtures('torchrun_environment')
def test_mmengine_pytorch_launcher_fails_without_a_gpu_upstream(run_python):
    result = run_python(WITHOUT_CUDA + 'from mmengine.dist import init_dist\n'
                        "init_dist('pytorch')\n")
    assert result.returncode != 0
    assert 'cuda' in result.stderr.lower() or 'CUDA' in result.stderr


@pytest.mark.usefixtures('torchrun_environment')
def test_cpu_process_group_is_gloo_and_ddp_gets_no_devices(run_python):
    result = run_python(
        WITHOUT_CUDA + 'import torch.distributed as dist\n'
        'from mmengine.config import Config\n'
        'from mmdsnet.compat.mmengine_cpu_launcher import init_cpu_process_group\n'
        'cfg = Config(dict(find_unused_parameters=True))\n'
        'init_cpu_process_group(cfg)\n'
        'print(dist.get_backend(), dist.get_world_size(), cfg.model_wrapper_cfg)\n'
        'dist.destroy_process_group()\n')
    assert result.returncode == 0, result.stderr[-2000:]
    backend, world_size, wrapper = result.stdout.strip().split(' ', 2)
    assert (backend, world_size) == ('gloo', '1')
    assert "'device_ids': None" in wrapper and "'find_unused_parameters': True" in wrapper
