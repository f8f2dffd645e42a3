"""Segment one image and save it with the predicted classes drawn over it as a coloured mask.

    python tools/demo/seg_demo.py IMAGE CONFIG CHECKPOINT [--out seg_demo.png] [--opacity 0.5]
                                  [--device cpu] [--cfg-options KEY=VALUE ...]

Runs MMSegmentation's ``init_model`` and ``inference_model`` on a segmentation config (e.g.
configs/upernet_dsnet_small_ade20k.py) and a checkpoint trained with it, and draws the
prediction with ``SegLocalVisualizer``: each class in its palette colour, blended with the image
(``--opacity`` in (0, 1]; 1 hides the image), its name written on it. The class names and colours
come from the checkpoint's dataset meta. Prints the share of the image each predicted class
covers. The image is resized as the config's ``test_pipeline`` says
(the ADE20K configs: a short side of 512) and the prediction drawn at the image's own size; e.g.
``--cfg-options 'test_pipeline.1.scale=(1024,256)'`` infers at a short side of 256.
"""
import argparse
import os

# First: registers DSNet, and its compat fixes must precede the first OpenMMLab import.
import mmdsnet  # noqa: F401  isort:skip
import mmcv
import torch
from mmengine.config import DictAction
from mmseg.apis import inference_model, init_model
from mmseg.visualization import SegLocalVisualizer

from mmdsnet.launch import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='segmentation config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='seg_demo.png', help='where to save the drawing')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the mask over the image, in (0, 1] '
                        '(default: %(default)s)')
    parser.add_argument(
        '--device',
        default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device to run on')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. '
                        "'test_pipeline.1.scale=(1024,256)'")
    args = parser.parse_args()
    for kind in ('image', 'config', 'checkpoint'):
        path = getattr(args, kind)
        if not os.path.isfile(path):
            parser.error(f'{kind} file {path!r} not found')
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    return args


def main():
    args = parse_args()
    model = init_model(load_config(args.config, args.cfg_options), args.checkpoint,
                       device=args.device)
    prediction = inference_model(model, args.image)

    classes = model.dataset_meta['classes']
    visualizer = SegLocalVisualizer(alpha=args.opacity)
    # Not through the constructor: mmseg 1.2.2's passes the classes as the palette and back.
    visualizer.set_dataset_meta(classes=classes, palette=model.dataset_meta['palette'])
    visualizer.add_datasample('seg_demo', mmcv.imread(args.image, channel_order='rgb'),
                              prediction, draw_gt=False, out_file=args.out)

    labels = prediction.pred_sem_seg.data.flatten()
    counts = torch.bincount(labels, minlength=len(classes))
    for label in counts.argsort(descending=True)[:counts.count_nonzero()].tolist():
        print(f'{classes[label]:>20s} {100 * counts[label].item() / labels.numel():5.1f}%')
    print(f'drawn in {args.out}')


if __name__ == '__main__':
    main()
