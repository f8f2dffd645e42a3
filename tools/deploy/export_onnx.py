"""Export a DSNet image classifier to ONNX with dynamic batch size and image size.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W] [--opset N]

The graph maps ``input`` (N, 3, H, W), float32 images as the config's data preprocessor
delivers them (RGB, normalised with its mean and std), to ``logits`` (N, num_classes).
H and W may differ from the traced ``--shape``; both must be at least 64 (``MIN_SIDE``).
The backbone's BatchNorms that feed a 1x1 conv are folded into it first
(``DSNet.switch_to_deploy``; ``--keep-norms`` exports them as they are).
"""
import argparse

# First: registers DSNet, and its compat fixes must precede the first mmpretrain import.
import mmdsnet  # noqa: F401  isort:skip
import torch
from mmpretrain.apis import get_model
from torch import nn

from mmdsnet.compat.torch_onnx_export import export_onnx

# Below this side DSNet's stage-4 global map, (side // 32) // 2, is clamped to 1 by Python code
# that a trace freezes; from it up, the traced graph computes every size from the input's.
MIN_SIDE = 64


class Logits(nn.Module):
    """The classifier's ``mode='tensor'`` forward, which returns the head's logits."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(inputs, mode='tensor')


def parse_args():
    parser = argparse.ArgumentParser(description='Export a classifier to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
        help='image size of the example input the graph is traced with')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version')
    parser.add_argument('--keep-norms', action='store_true',
                        help='do not fold BatchNorms into the 1x1 convs that follow them')
    args = parser.parse_args()
    if min(args.shape) < MIN_SIDE:
        parser.error(f'--shape: both sides must be at least {MIN_SIDE}')
    return args


def main():
    args = parse_args()
    classifier = get_model(args.config, pretrained=args.checkpoint, device='cpu').eval()
    if not args.keep_norms and hasattr(classifier.backbone, 'switch_to_deploy'):
        classifier.backbone.switch_to_deploy()
    model = Logits(classifier).eval()
    export_onnx(
        model, (torch.zeros(1, 3, *args.shape), ),
        args.out,
        input_names=['input'],
        output_names=['logits'],
        dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'}, 'logits': {0: 'batch'}},
        opset_version=args.opset)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
