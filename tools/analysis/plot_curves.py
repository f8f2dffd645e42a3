"""Draw a training run's loss, learning rate and validation metrics to a PNG from its scalar log.

    python tools/analysis/plot_curves.py WORK_DIR_OR_SCALARS_JSON [--keys KEY ...] [--out PNG]

The log is the ``scalars.json`` that MMEngine's ``LocalVisBackend`` writes to
``<work_dir>/<timestamp>/vis_data/``, one JSON object a line: a training line every logger
interval (``loss``, ``lr``, ... at the iteration) and a validation line after each evaluation
(``accuracy/top1``, ``coco/bbox_mAP``, ... at the epoch, or at the iteration for iteration-based
training). Given a work dir, the latest run that wrote one is drawn; a resumed run starts a new
``<timestamp>`` folder, so pass an earlier run's ``scalars.json`` to draw that one.

By default there is one panel for the training losses (``loss`` and its parts), one for ``lr``
and one per family of validation metrics (``accuracy/top1`` and ``top5``; ``coco/bbox_mAP`` and
``segm_mAP``, leaving out their variants such as ``coco/bbox_mAP_50``); ``--keys`` draws exactly
the keys given, one panel each. The PNG goes next to the log unless ``--out`` says otherwise.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# What a validation line holds besides the metrics: its step and the evaluation's timing.
VAL_BOOKKEEPING = {'step', 'time', 'data_time'}
PANEL_COLUMNS = 3


def find_log(path: str) -> str:
    """The ``scalars.json`` to draw: ``path`` itself when it is a file, that of the run folder
    ``path``, else the latest run's under the work dir ``path`` (timestamp folders sort by
    time)."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a work dir nor a scalars.json file')
    logs = (glob.glob(osp.join(path, 'vis_data', 'scalars.json'))
            or sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json'))))
    if not logs:
        raise FileNotFoundError(
            f'{path} holds no scalar log (<work_dir>/<timestamp>/vis_data/scalars.json): pass '
            'the work dir of a training run whose config keeps LocalVisBackend in '
            'visualizer.vis_backends, or the path of a scalars.json')
    return logs[-1]


def read_log(path: str) -> Tuple[List[dict], List[dict]]:
    """The log's training lines (those carrying ``iter``) and validation lines, in order."""
    train, val = [], []
    with open(path) as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}, is not JSON ({error}); a run killed '
                                 'while writing leaves a cut last line: delete it') from error
            (train if 'iter' in record else val).append(record)
    if not train and not val:
        raise ValueError(f'{path} is empty: the run stopped before its first logged iteration '
                         '(default_hooks.logger.interval sets how often it logs)')
    return train, val


def default_panels(train: List[dict], val: List[dict]) -> List[List[str]]:
    """Training losses together, ``lr``, then one panel per validation metric family (the part
    of the key before its first ``/``) without the variants of a metric (``coco/bbox_mAP_50``
    and the other eleven COCO figures would bury ``coco/bbox_mAP`` and ``coco/segm_mAP``)."""
    train_keys = keys_of(train)
    panels = [[key for key in train_keys if key.startswith('loss')]]
    panels.append([key for key in train_keys if key == 'lr'])
    metrics = [key for key in keys_of(val) if key not in VAL_BOOKKEEPING]
    families: Dict[str, List[str]] = {}
    for key in metrics:
        if not any(key.startswith(f'{other}_') for other in metrics):
            families.setdefault(key.split('/')[0], []).append(key)
    return [panel for panel in panels + list(families.values()) if panel]


def keys_of(records: List[dict]) -> List[str]:
    """Every key of ``records``, in the order it first appears."""
    return list(dict.fromkeys(key for record in records for key in record))


def series(records: List[dict], key: str) -> Tuple[List[float], List[float]]:
    """``(steps, values)`` of ``key`` in the records that have it."""
    points = [(record['step'], record[key]) for record in records if key in record]
    return [step for step, _ in points], [value for _, value in points]


def plot(log: str, keys: Optional[List[str]], out: str) -> List[str]:
    """Draw the panels of ``log`` to ``out``; returns one line per curve drawn, for the user."""
    train, val = read_log(log)
    if keys is None:
        panels = default_panels(train, val)
        if not panels:
            raise ValueError(f'{log} has no loss, lr or validation metric to draw; pick from its '
                             f'keys with --keys: {", ".join(available_keys(train, val))}')
    else:
        absent = [key for key in keys if key not in available_keys(train, val)]
        if absent:
            raise KeyError(f'{log} has no {", ".join(absent)}; its keys: '
                           f'{", ".join(available_keys(train, val))}')
        panels = [[key] for key in keys]

    # Validation lines are at the epoch when training lines carry one (epoch-based logging).
    val_axis = 'epoch' if any('epoch' in record for record in train) else 'iteration'
    rows = -(-len(panels) // PANEL_COLUMNS)
    columns = min(len(panels), PANEL_COLUMNS)
    figure = Figure(figsize=(4.8 * columns, 3.4 * rows), layout='constrained')
    FigureCanvasAgg(figure)
    figure.suptitle(log, fontsize='small')
    drawn = []
    for index, panel in enumerate(panels, 1):
        axes = figure.add_subplot(rows, columns, index)
        records, axis = (train, 'iteration') if panel[0] in keys_of(train) else (val, val_axis)
        for key in panel:
            steps, values = series(records, key)
            axes.plot(steps, values, marker='o' if records is val or len(values) == 1 else None,
                      markersize=4, label=key)
            points = f'{len(values)} points' if len(values) > 1 else '1 point'
            drawn.append(f'{key}: {points}, {axis} {steps[0]:g} to {steps[-1]:g}, '
                         f'last {values[-1]:.4g}')
        axes.set_xlabel(axis)
        axes.set_title(panel[0] if len(panel) == 1 else panel[0].split('/')[0])
        axes.grid(alpha=0.3)
        if len(panel) > 1:
            axes.legend(fontsize='small')
    figure.savefig(out, dpi=100)
    return drawn


def available_keys(train: List[dict], val: List[dict]) -> List[str]:
    """Every key that can be drawn: all but ``step``, the x axis."""
    return [key for key in keys_of(train + val) if key != 'step']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path', metavar='WORK_DIR_OR_SCALARS_JSON',
                        help="a training run's work dir (its latest run is drawn) or a "
                        'scalars.json')
    parser.add_argument('--keys', nargs='+', metavar='KEY',
                        help='draw exactly these keys, one panel each (e.g. loss lr '
                        'accuracy/top1 or coco/bbox_mAP); default: losses, lr and the '
                        'validation metrics')
    parser.add_argument('--out', help='PNG to write (default: curves.png next to the log)')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    log = find_log(args.path)
    out = args.out or osp.join(osp.dirname(log), 'curves.png')
    drawn = plot(log, args.keys, out)
    print(f'{log}:')
    for line in drawn:
        print(f'  {line}')
    print(f'saved {out}')
    return out


if __name__ == '__main__':
    main()
