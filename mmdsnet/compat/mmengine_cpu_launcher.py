"""MMEngine's ``pytorch`` launcher on a machine without a GPU: gloo, and DDP without devices.

Failure: mmengine 0.10.7's pytorch launcher assumes one GPU per process. It calls
``torch.cuda.set_device(LOCAL_RANK)`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, both of which fail on CPU, so ``tools/dist_train.sh`` could not run
on a CPU machine. Needed on: mmengine 0.10 where CUDA is not available. Reproduced by
``tests/compat/test_mmengine_cpu_launcher.py``; used by :func:`mmdsnet.launch.init_distributed`.
"""
import datetime

import torch.distributed as dist
from mmengine.config import Config


def init_cpu_process_group(cfg: Config) -> None:
    """Start a gloo process group from the torchrun environment, and have the Runner wrap the
    model in DDP without device ids."""
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=timeout))
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
