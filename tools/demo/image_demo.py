"""Classify one image with a config and a checkpoint; print the top-5 classes and optionally save
the image with the prediction drawn on it.

    python tools/demo/image_demo.py IMAGE CONFIG CHECKPOINT [--out-file OUT.png] [--device cpu]
"""
import argparse

# First: registers DSNet, and its compat fixes must precede the first mmpretrain import.
import mmdsnet  # noqa: F401  isort:skip
import mmcv
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.visualization import UniversalVisualizer

# Images are drawn with a short side of at least this many pixels, room for the label text.
MIN_DRAW_SIZE = 224


def parse_args():
    parser = argparse.ArgumentParser(description='Classify an image')
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', help='save the image with the prediction drawn on it')
    parser.add_argument('--device', default=None, help='e.g. cpu or cuda:0 (default: auto)')
    return parser.parse_args()


def main():
    args = parse_args()
    inferencer = ImageClassificationInferencer(
        args.config, pretrained=args.checkpoint, device=args.device)
    prediction = inferencer(args.img, return_datasamples=True)[0]
    classes = inferencer.classes

    scores, labels = prediction.pred_score.topk(min(5, len(prediction.pred_score)))
    print(f'\ntop-5 for {args.img}:')  # a new line: the progress bar may not end its own
    for rank, (score, label) in enumerate(zip(scores.tolist(), labels.tolist()), 1):
        name = classes[label] if classes else str(label)
        print(f'{rank}. {name:<30} {score:.4f}  (class {label})')

    if args.out_file:
        image = mmcv.imread(args.img, channel_order='rgb')
        UniversalVisualizer().visualize_cls(
            image,
            prediction,
            classes=classes,
            resize=max(MIN_DRAW_SIZE, min(image.shape[:2])),
            draw_gt=False,
            out_file=args.out_file)
        print(f'wrote {args.out_file}')


if __name__ == '__main__':
    main()
