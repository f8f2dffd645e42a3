"""The embedded default, end to end: write scikit-learn's handwritten digits as an image folder
(once, under data/digits), train DSNet-tiny on them from scratch, evaluate on the held-out
images and print the top-1 accuracy.

    .venv/bin/python tools/quickstart.py [--work-dir DIR]

A few minutes on two CPU cores. The config is configs/quickstart/dsnet_tiny_digits.py; the
checkpoint it leaves works with tools/test.py, tools/demo/image_demo.py and
tools/deploy/export_onnx.py.
"""
import argparse
import os.path as osp
import time

import torch
from mmengine.runner import Runner, find_latest_checkpoint

from mmdsnet.datasets import write_digits
from mmdsnet.launch import load_config

CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'quickstart',
                  'dsnet_tiny_digits.py')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    args = parser.parse_args()

    # With two OpenMP threads on two cores, every op waits at a barrier whenever the data worker
    # or another process holds a core: training steps measured 10-50x slower than with one.
    torch.set_num_threads(1)
    start = time.perf_counter()
    cfg = load_config(CONFIG, work_dir=args.work_dir)
    write_digits(cfg.train_dataloader.dataset.data_root)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    minutes = (time.perf_counter() - start) / 60

    print(f'\nheld-out top-1: {metrics["accuracy/top1"]:.2f}% '
          f'({len(runner.test_dataloader.dataset)} images; {minutes:.1f} min in all)\n'
          f'config:     {CONFIG}\n'
          f'checkpoint: {find_latest_checkpoint(runner.work_dir)}')


if __name__ == '__main__':
    main()
