"""Detect objects in one image and save it with the boxes, masks and labels drawn.

    python tools/demo/det_demo.py IMAGE CONFIG CHECKPOINT [--out-file det_demo.jpg]
                                  [--score-thr 0.3] [--device cpu]

Runs MMDetection's DetInferencer on a detection config and a checkpoint trained with it; the
class names come from the checkpoint's dataset meta.
"""
import argparse

import mmcv
import torch
from mmdet.apis import DetInferencer


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='detection config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', default='det_demo.jpg', help='where to save the drawing')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='draw detections scoring at least this')
    parser.add_argument(
        '--device',
        default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device to run on')
    return parser.parse_args()


def main():
    args = parse_args()
    inferencer = DetInferencer(model=args.config, weights=args.checkpoint, device=args.device)
    result = inferencer(
        args.image,
        pred_score_thr=args.score_thr,
        return_vis=True,
        no_save_vis=True,
        no_save_pred=True)
    mmcv.imwrite(mmcv.rgb2bgr(result['visualization'][0]), args.out_file)

    classes = inferencer.model.dataset_meta['classes']
    prediction = result['predictions'][0]
    kept = [(classes[label], score, bbox)
            for label, score, bbox in zip(prediction['labels'], prediction['scores'],
                                          prediction['bboxes'])
            if score >= args.score_thr]
    for name, score, bbox in kept:
        print(f'{name:>12s} {score:.2f}  box ' + ' '.join(f'{v:.1f}' for v in bbox))
    print(f'{len(kept)} detections with score >= {args.score_thr}; drawn in {args.out_file}')


if __name__ == '__main__':
    main()
