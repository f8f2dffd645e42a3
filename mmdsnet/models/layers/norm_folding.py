"""Folding an inference-mode BatchNorm into the convolution it feeds."""
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def fold_norm_into_conv(norm: _BatchNorm, conv: nn.Conv2d) -> None:
    """Turn ``conv(norm(x))`` into ``conv(x)`` in place, for an eval-mode BatchNorm followed by
    an unpadded 1x1 conv: the norm's per-channel affine map moves into the conv's weight and
    bias. A padded conv would see the norm's shift where it now sees zeros, so it is refused."""
    if conv.kernel_size != (1, 1) or conv.padding != (0, 0) or conv.groups != 1:
        raise ValueError(f'cannot fold a BatchNorm exactly into {conv}')
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        conv.bias.add_(conv.weight.flatten(1) @ shift)
        conv.weight.mul_(scale.view(1, -1, 1, 1))
