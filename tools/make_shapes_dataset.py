"""Write the generated shapes set (mmdsnet.datasets.shapes): instance segmentation in COCO format
or, with --semantic, semantic segmentation in ADE20K's layout.

    python tools/make_shapes_dataset.py [--semantic] [--out data/shapes] [--num-train 1000]
                                        [--num-val 100] [--image-size 128] [--seed 0]

configs/quickstart/mask_rcnn_dsnet_tiny_shapes.py reads the defaults (data/shapes),
configs/quickstart/fpn_dsnet_tiny_shapes_ade.py those with --semantic (data/shapes_ade).
"""
import argparse
import time

from mmdsnet.datasets import write_shapes_dataset, write_shapes_semantic_dataset


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--semantic', action='store_true',
                        help='write the semantic segmentation set in ADE20K\'s layout')
    parser.add_argument('--out', help='dataset root to write (data/shapes, with --semantic '
                        'data/shapes_ade)')
    parser.add_argument('--num-train', type=int, default=1000, help='training images')
    parser.add_argument('--num-val', type=int, default=100, help='validation images')
    parser.add_argument('--image-size', type=int, default=128, help='side of the square images')
    parser.add_argument('--seed', type=int, default=0, help='base random seed')
    return parser.parse_args()


def main():
    args = parse_args()
    out = args.out or ('data/shapes_ade' if args.semantic else 'data/shapes')
    write = write_shapes_semantic_dataset if args.semantic else write_shapes_dataset
    start = time.perf_counter()
    written = write(out, args.num_train, args.num_val, args.image_size, args.seed)
    print(f'wrote {args.num_train} train and {args.num_val} val images under {out} '
          f'in {time.perf_counter() - start:.1f} s')
    for split, paths in written.items():
        print(f'{split}: {" and ".join(paths) if args.semantic else paths}')


if __name__ == '__main__':
    main()
