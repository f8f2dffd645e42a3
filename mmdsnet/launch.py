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
from mmengine.logging import print_log
from mmengine.utils.dl_utils import set_multi_processing

from .compat.mmengine_cpu_launcher import init_cpu_process_group
from .engine import PREEMPTED_EXIT_CODE, Preempted, RankWatchdog

# The config entries that a ``data_root`` override reaches (:func:`_move_data_root`).
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


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
    ``work_dirs/<config name>``. A ``data_root`` override reaches every dataset and evaluator
    annotation file that the config builds from its ``data_root`` (:func:`_move_data_root`).
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        _refuse_misspelled_keys(cfg, cfg_options, path)
        old_data_root = cfg.get('data_root')
        cfg.merge_from_dict(cfg_options)
        if 'data_root' in cfg_options:
            _move_data_root(cfg, old_data_root, cfg_options, path)
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


def _move_data_root(cfg: Config, old_root: Optional[str], cfg_options: dict, path: str) -> None:
    """Point everything a config built from its old ``data_root`` at the new one.

    A config file's ``data_root`` is a variable: reading the file copies its value into each
    dataloader's dataset and into the evaluators' ``ann_file`` paths, so overriding the
    top-level entry afterwards would change nothing. Here every dataset the dataloaders build
    (the datasets inside wrappers such as ``RepeatDataset`` and ``ConcatDataset`` included)
    whose ``data_root`` was the old one gets the new one, and every evaluator ``ann_file`` under
    the old root moves under the new one; one log line lists them. Entries that
    ``cfg_options`` sets themselves keep their given value.

    Raises:
        ValueError: A dataset reads another root than the config's ``data_root`` (or none), so
            the override would not reach it, or nothing reads ``data_root`` at all. The message
            names the keys to pass instead.
    """
    new_root = cfg.data_root
    moved, elsewhere = [], []
    for dataset_key, dataset in _datasets(cfg):
        key = f'{dataset_key}.data_root'
        root = dataset.get('data_root')
        if _given(key, cfg_options):
            continue
        if _same_root(root, old_root):
            dataset['data_root'] = new_root
            moved.append(key)
        elif not _same_root(root, new_root):
            elsewhere.append((key, root))
    if elsewhere:
        raise ValueError(
            f'--cfg-options data_root={new_root} would not reach '
            f'{", ".join(f"{key} ({root!r})" for key, root in elsewhere)}: {path} builds '
            f'{"it" if len(elsewhere) == 1 else "them"} from another root than its data_root '
            f'({old_root!r}). Pass the datasets\' own keys instead, e.g. '
            f'{elsewhere[0][0]}={new_root}')
    for evaluator_key, evaluator in _evaluators(cfg):
        key = f'{evaluator_key}.ann_file'
        ann_file = evaluator.get('ann_file')
        if _given(key, cfg_options) or not isinstance(ann_file, str) or not old_root:
            continue
        old_prefix = old_root.rstrip('/') + '/'
        if ann_file.startswith(old_prefix):
            evaluator['ann_file'] = osp.join(new_root, ann_file[len(old_prefix):])
            moved.append(key)
    if not moved:
        raise ValueError(f'--cfg-options data_root={new_root}: nothing in {path} reads '
                         'data_root; set the datasets\' own data_root (or ann_file and '
                         'data_prefix) instead, e.g. train_dataloader.dataset.data_root=DIR')
    print_log(f'data_root {new_root} (was {old_root}) set in: {", ".join(moved)}',
              logger='current')


def _datasets(cfg: Config) -> Iterator[tuple]:
    """``(key, dataset config)`` of every dataset the dataloaders build; a wrapper's
    (``dataset`` or ``datasets`` entries) instead of the wrapper's own."""
    for name in DATALOADERS:
        dataloader = cfg.get(name)
        if isinstance(dataloader, dict) and isinstance(dataloader.get('dataset'), dict):
            yield from _unwrapped(f'{name}.dataset', dataloader['dataset'])


def _unwrapped(key: str, dataset: dict) -> Iterator[tuple]:
    """The datasets inside a dataset wrapper, or the dataset itself."""
    if isinstance(dataset.get('dataset'), dict):
        yield from _unwrapped(f'{key}.dataset', dataset['dataset'])
    elif isinstance(dataset.get('datasets'), (list, tuple)):
        for index, inner in enumerate(dataset['datasets']):
            yield from _unwrapped(f'{key}.datasets.{index}', inner)
    else:
        yield key, dataset


def _evaluators(cfg: Config) -> Iterator[tuple]:
    """``(key, evaluator config)`` of each metric, in single and list-of-metrics evaluators."""
    for name in EVALUATORS:
        evaluator = cfg.get(name)
        if isinstance(evaluator, dict):
            yield name, evaluator
        elif isinstance(evaluator, (list, tuple)):
            for index, metric in enumerate(evaluator):
                if isinstance(metric, dict):
                    yield f'{name}.{index}', metric


def _given(key: str, cfg_options: dict) -> bool:
    """Whether ``cfg_options`` sets ``key`` or an entry that contains it."""
    return any(key == option or key.startswith(option + '.') for option in cfg_options)


def _same_root(root, other) -> bool:
    """Two data roots name the same folder (``'data/coco/'`` and ``'data/coco'`` do)."""
    return isinstance(root, str) and isinstance(other, str) and (
        root.rstrip('/') == other.rstrip('/'))


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
