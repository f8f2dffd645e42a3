"""Write the generated shapes instance segmentation set (mmdsnet.datasets.shapes) in COCO format.

    python tools/make_shapes_dataset.py [--out data/shapes] [--num-train 1000] [--num-val 100]
                                        [--image-size 128] [--seed 0]

configs/quickstart/mask_rcnn_dsnet_tiny_shapes.py reads the defaults.
"""
import argparse
import time

from mmdsnet.datasets import write_shapes_dataset


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/shapes', help='dataset root to write')
    parser.add_argument('--num-train', type=int, default=1000, help='training images')
    parser.add_argument('--num-val', type=int, default=100, help='validation images')
    parser.add_argument('--image-size', type=int, default=128, help='side of the square images')
    parser.add_argument('--seed', type=int, default=0, help='base random seed')
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.perf_counter()
    ann_files = write_shapes_dataset(args.out, args.num_train, args.num_val, args.image_size,
                                     args.seed)
    print(f'wrote {args.num_train} train and {args.num_val} val images under {args.out} '
          f'in {time.perf_counter() - start:.1f} s')
    for split, ann_file in ann_files.items():
        print(f'{split}: {ann_file}')


if __name__ == '__main__':
    main()
