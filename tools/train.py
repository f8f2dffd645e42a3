"""Train a classification or detection model from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                          [--tensorboard] [--cfg-options KEY=VALUE ...]
                          [--launcher {none,pytorch,slurm,mpi}]

Several processes or machines: tools/dist_train.sh, tools/slurm_train.sh.

Exit codes besides 0 and 1: 75 when SIGTERM or SIGUSR1 stopped the run after checkpointing the
iteration in flight (``--resume`` continues from it); 69 when another rank of the job was lost
(``rank_watchdog`` in the config).
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

from mmdsnet.launch import add_runner_arguments, distributed_session, load_config


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or without a value from the latest checkpoint in '
        'the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='train with automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate linearly with the total batch size '
        '(auto_scale_lr.base_batch_size in the config is the batch the lr is set for)')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log scalars to TensorBoard event files under '
        '<work_dir>/<timestamp>/vis_data (view with: tensorboard --logdir WORK_DIR)')
    add_runner_arguments(parser)
    return parser.parse_args()


def add_tensorboard(cfg: Config) -> None:
    """Add MMEngine's ``TensorboardVisBackend`` to the config's visualizer, next to the backends
    it has (``LocalVisBackend``'s ``scalars.json`` is what ``tools/analysis/plot_curves.py``
    reads), for classification and detection visualizers alike.

    The backend imports tensorboard only at its first write, after the model and data are
    built; checking here makes a missing package fail before training starts.
    """
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError as error:
        raise ImportError(f'--tensorboard needs the tensorboard package ({error}); install it '
                          'with `.venv/bin/python -m pip install tensorboard` or rerun '
                          '`bash tools/install.sh`') from error
    visualizer = cfg.get('visualizer') or dict(type='Visualizer')
    backends = list(visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(backend['type'] == 'TensorboardVisBackend' for backend in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer['vis_backends'] = backends
    cfg.visualizer = visualizer


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError(f'{args.config} has no auto_scale_lr.base_batch_size, the total '
                             'batch size its learning rate is set for; --auto-scale-lr needs it')
        cfg.auto_scale_lr.enable = True
    if args.tensorboard:
        add_tensorboard(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    with distributed_session(cfg):
        Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
