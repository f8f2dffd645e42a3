"""Config loading and process set-up shared by ``tools/train.py``, ``tools/test.py`` and
``tools/quickstart.py``, for classification and detection configs alike: the config's
``default_scope`` picks the registries when the Runner is built."""
import argparse
import contextlib
import difflib
import gc
import logging
import os
import os.path as osp
import sys
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.dist import init_dist
from mmengine.utils.dl_utils import set_multi_processing

from .compat.mmengine_cpu_launcher import init_cpu_process_group
from .engine import PREEMPTED_EXIT_CODE, Preempted, RankWatchdog


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool that builds a Runner from a config takes."""
    parser.add_argument('--work-dir', help='where logs, checkpoints and results go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_dataloader.batch_size=64 '
        "model.backbone.arch=small 'key=[a,b]'")
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply command-line overrides and fill in ``work_dir`` and ``launcher``.

    ``work_dir`` is taken from the argument, else from the config, else
    ``work_dirs/<config name>``.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        _refuse_misspelled_keys(cfg, cfg_options, path)
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    cfg.launcher = launcher
    return cfg


def _refuse_misspelled_keys(cfg: Config, cfg_options: dict, path: str) -> None:
    """A misspelled top-level key (``trian_cfg.max_epochs=3``) would become a new entry that
    nothing reads, and the run would silently use the old value. New top-level keys that are
    not close to an existing one (e.g. ``find_unused_parameters``) stay allowed."""
    for option in cfg_options:
        top = option.split('.')[0]
        if top in cfg:
            continue
        close = difflib.get_close_matches(top, list(cfg.keys()), n=3, cutoff=0.8)
        if close:
            raise ValueError(f'--cfg-options {option}: {path} has no {top!r}; did you mean '
                             f'{" or ".join(repr(key) for key in close)}?')


@contextlib.contextmanager
def distributed_session(cfg: Config) -> Iterator[None]:
    """Run a tool's body in its process group, watched by a :class:`RankWatchdog`.

    The group is started here (:func:`init_distributed`) and shut down once the body has finished
    without error; the body must not keep its Runner beyond the block. With several ranks, the
    watchdog (``cfg.rank_watchdog``) ends this process when another rank is lost. After an
    error the group is left alone, since the other ranks may still be inside a collective that
    the shutdown would hang; the watchdog tells them (see :meth:`RankWatchdog.after_error`).
    A :class:`Preempted` body ends the process at once with its exit code, after its
    checkpoint has been written.
    """
    init_distributed(cfg)
    watchdog = RankWatchdog.for_config(cfg)
    try:
        yield
    except Preempted:
        if dist.is_initialized():
            _exit_preempted(watchdog)
        raise
    except Exception as error:
        if watchdog is not None:
            watchdog.after_error(error)
        raise
    if watchdog is not None:
        watchdog.stop()
    shutdown_process_groups()


def _exit_preempted(watchdog: Optional[RankWatchdog]) -> None:
    """End a preempted member of a process group with :data:`PREEMPTED_EXIT_CODE`.

    Its Runner is still held by the exception's traceback, so the group's threads cannot be
    stopped, and a process that exits with gloo threads alive can abort at interpreter
    shutdown (see :func:`shutdown_process_groups`) with another exit code. The checkpoint is on
    disk and every rank has passed the barrier after it: nothing is left to clean up.
    """
    if watchdog is not None:
        watchdog.stop()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(PREEMPTED_EXIT_CODE)


def shutdown_process_groups() -> None:
    """Destroy every process group and let gloo's threads end while Python is still running.

    A process that exits with a gloo group alive can abort while Python shuts down
    (``terminate called without an active exception``, SIGABRT, exit code -6; 4 of 52 two-process
    CPU runs here): a gloo worker thread releases the last collective's tensors and needs the
    interpreter that is being torn down. ``destroy_process_group`` only unregisters the groups;
    their threads stop when the last reference goes, and a Runner's DDP wrapper holds one
    through reference cycles, hence the collection. Does nothing when no group is initialised.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def init_distributed(cfg: Config) -> None:
    """Start the process group for ``cfg.launcher`` (nothing for ``'none'``), as the Runner
    would, so that the watchdog can start before the Runner is built; the Runner then keeps it.
    On machines without a GPU, ``--launcher pytorch`` runs over gloo
    (:mod:`mmdsnet.compat.mmengine_cpu_launcher`).
    """
    if cfg.launcher == 'none' or dist.is_initialized():
        return
    env_cfg = cfg.get('env_cfg', {})
    set_multi_processing(**env_cfg.get('mp_cfg', {}), distributed=True)
    if cfg.launcher == 'pytorch' and not torch.cuda.is_available():
        init_cpu_process_group(cfg)
    else:
        init_dist(cfg.launcher, **env_cfg.get('dist_cfg', {}))
