"""Evaluate a checkpoint on a config's test set (classification or detection).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULTS.pkl]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

Several processes or machines: tools/dist_test.sh.
"""
import argparse

from mmengine.registry import METRICS
from mmengine.runner import Runner

from mmdsnet.launch import add_runner_arguments, init_cpu_distributed, load_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='also dump the predictions to this pickle file')
    add_runner_arguments(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint

    init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    if args.out is not None:
        # mmdet's variant RLE-encodes instance masks; raw (N, H, W) masks would take ~100 MB
        # an image on COCO.
        dump = 'DumpDetResults' if cfg.get('default_scope') == 'mmdet' else 'DumpResults'
        runner.test_evaluator.metrics.append(
            METRICS.build(dict(type=dump, out_file_path=args.out)))
    runner.test()


if __name__ == '__main__':
    main()
