"""Evaluate a checkpoint on a config's test set (classification or detection).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.pkl]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

Several processes or machines: tools/dist_test.sh.
"""
import argparse

from mmengine.registry import METRICS
from mmengine.runner import Runner

from mmdsnet.launch import add_runner_arguments, distributed_session, load_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='also dump the predictions to this pickle file')
    add_runner_arguments(parser)
    return parser.parse_args()


def run_test(cfg, out=None):
    runner = Runner.from_cfg(cfg)
    if out is not None:
        # mmdet's variant RLE-encodes instance masks; raw (N, H, W) masks would take ~100 MB
        # an image on COCO.
        dump = 'DumpDetResults' if cfg.get('default_scope') == 'mmdet' else 'DumpResults'
        runner.test_evaluator.metrics.append(METRICS.build(dict(type=dump, out_file_path=out)))
    runner.test()


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint

    with distributed_session(cfg):
        run_test(cfg, args.out)


if __name__ == '__main__':
    main()
