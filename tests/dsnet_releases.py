"""The public DSNet releases' network in their own computational form, as a reference.

``ReleaseDSNet`` re-implements the releases' classifier (``MixVisionTransformer`` with its
``MixBlock``\\ s; the authors' PyTorch code and PaddleClas compute the same function) from their
description, with the releases' parameter names, so that a release state dict loads into it with
``strict=True``. It shares no code with ``mmdsnet`` and computes the way the releases do:

- every block works on NCHW maps; the local stream's tokens are the map flattened and
  transposed, and both stream outputs are reshaped back and made contiguous;
- the global stream is resized with ``F.interpolate`` (bilinear, ``align_corners=False``) down to
  ``(H // r, W // r)`` and back up;
- attention is explicit, ``softmax(q @ k^T * scale) @ v``, with ``nn.Dropout`` (0.1 in both
  releases, whatever their ``attn_drop_rate`` says) on the materialised weights;
- stochastic depth restarts its ramp in every stage (block j of each stage gets
  ``linspace(0, drop_path_rate, sum(depths))[j]``).

It is the oracle of the tests that read the releases' weight files (through
``tests/release_checkpoints.py``): converted weights must give its logits.
"""
from typing import Dict, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EMBED_DIMS = (64, 128, 320, 512)
NUM_HEADS = (1, 2, 5, 8)
GLOBAL_DOWNSAMPLE = (8, 4, 2, 2)
DEPTHS = {'tiny': (2, 2, 4, 1), 'small': (3, 4, 8, 3), 'base': (3, 4, 28, 3)}
NUM_CLASSES = 1000
RELEASE_ATTN_DROP = 0.1


class DropPath(nn.Module):
    """Stochastic depth per sample (the releases use timm's)."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class ExplicitAttention(nn.Module):
    """``dropout(softmax(q @ k^T * scale)) @ v`` on (B, heads, N, head_dim) tensors, heads merged
    into (B, N, heads * head_dim). No parameters (the releases' ``Attention_pure``)."""

    def __init__(self, scale: float, attn_drop: float):
        super().__init__()
        self.scale = scale
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor) -> torch.Tensor:
        weights = ((query @ key.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = self.attn_drop(weights) @ value
        return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


class ConvMlp(nn.Module):
    """1x1 conv, GELU, 1x1 conv (the releases' ``CMlp``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def split_heads(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, 3C) -> (3, B, heads, N, C // heads): the channel axis is (3, heads, head_dim)."""
    batch, num_tokens, channels = qkv.shape
    return qkv.reshape(batch, num_tokens, 3, num_heads,
                       channels // 3 // num_heads).permute(2, 0, 3, 1, 4)


class MixBlock(nn.Module):
    """One block of the releases (a DS-Block), on (B, C, H, W) maps.

    Modules are registered in the releases' order, so the state dict lists its keys as theirs.
    """

    def __init__(self, dim: int, num_heads: int, downsample: int, mlp_ratio: float = 4.,
                 drop_path: float = 0., attn_drop: float = RELEASE_ATTN_DROP):
        super().__init__()
        self.dim = dim
        self.dim_conv = int(dim * 0.5)
        self.dim_sa = dim - self.dim_conv
        self.num_heads = num_heads
        self.downsample = downsample
        scale = (self.dim_sa // num_heads)**-0.5
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm_conv1 = nn.BatchNorm2d(self.dim_conv)
        self.norm_sa1 = nn.LayerNorm(self.dim_sa)
        self.conv = nn.Conv2d(self.dim_conv, self.dim_conv, 3, padding=1, groups=self.dim_conv)
        self.channel_up = nn.Linear(self.dim_sa, 3 * self.dim_sa)
        self.cross_channel_up_conv = nn.Conv2d(self.dim_conv, 3 * self.dim_conv, 1)
        self.cross_channel_up_sa = nn.Linear(self.dim_sa, 3 * self.dim_sa)
        self.fuse_channel_conv = nn.Linear(self.dim_conv, self.dim_conv)
        self.fuse_channel_sa = nn.Linear(self.dim_sa, self.dim_sa)
        self.attn = ExplicitAttention(scale, attn_drop)
        self.cross_attn = ExplicitAttention(scale, attn_drop)
        self.norm_conv2 = nn.BatchNorm2d(self.dim_conv)
        self.norm_sa2 = nn.LayerNorm(self.dim_sa)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        batch, _, height, width = x.shape
        residual = x
        x = self.conv1(self.norm1(x))
        sa, cv = x[:, :self.dim_sa], x[:, self.dim_sa:]
        cv = cv + self.conv(self.norm_conv1(cv))

        sa = F.interpolate(sa, size=(height // self.downsample, width // self.downsample),
                           mode='bilinear', align_corners=False)
        small_height, small_width = sa.shape[-2:]
        sa = sa.flatten(2).transpose(1, 2)
        query, key, value = split_heads(self.channel_up(self.norm_sa1(sa)), self.num_heads)
        sa = sa + self.attn(query, key, value)

        cv_q, cv_k, cv_v = split_heads(
            self.cross_channel_up_conv(self.norm_conv2(cv)).flatten(2).transpose(1, 2),
            self.num_heads)
        sa_q, sa_k, sa_v = split_heads(self.cross_channel_up_sa(self.norm_sa2(sa)),
                                       self.num_heads)
        cv_out = self.fuse_channel_conv(self.cross_attn(cv_q, sa_k, sa_v))
        cv = cv + cv_out.reshape(batch, height, width, -1).permute(0, 3, 1, 2).contiguous()
        sa = sa + self.fuse_channel_sa(self.cross_attn(sa_q, cv_k, cv_v))
        sa = sa.reshape(batch, small_height, small_width, -1).permute(0, 3, 1, 2).contiguous()
        sa = F.interpolate(sa, size=(height, width), mode='bilinear', align_corners=False)

        x = residual + self.drop_path(self.conv2(torch.cat([cv, sa], dim=1)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: a conv with kernel = stride (no norm)."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ReleaseDSNet(nn.Module):
    """The releases' DSNet classifier: ``patch_embed{s}``, ``blocks{s}``, ``norm``, ``head``.

    The parameters keep PyTorch's default initialisation: checks load a release state dict,
    and timings do not depend on the values.

    Args:
        arch (str | Sequence[int]): ``'tiny'``, ``'small'``, ``'base'`` or the blocks per stage.
        num_classes (int): Classes of the linear head. Defaults to 1000.
        drop_path_rate (float): Maximum stochastic depth rate (per-stage ramp, as released).
            Defaults to 0.1.
        attn_drop_rate (float): Dropout on the attention weights; the releases hard-code 0.1.
            Defaults to 0.1.
    """

    def __init__(self, arch: Union[str, Sequence[int]] = 'tiny', num_classes: int = NUM_CLASSES,
                 drop_path_rate: float = 0.1, attn_drop_rate: float = RELEASE_ATTN_DROP):
        super().__init__()
        self.depths = tuple(DEPTHS[arch] if isinstance(arch, str) else arch)
        rates = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        in_channels = 3
        # Registered stage by stage (the releases register the four patch embeddings first);
        # the order only decides the order of the state dict's keys.
        for stage, (dim, depth) in enumerate(zip(EMBED_DIMS, self.depths), start=1):
            self.add_module(f'patch_embed{stage}',
                            PatchEmbed(in_channels, dim, 4 if stage == 1 else 2))
            self.add_module(
                f'blocks{stage}',
                nn.ModuleList([
                    MixBlock(dim, NUM_HEADS[stage - 1], GLOBAL_DOWNSAMPLE[stage - 1],
                             drop_path=rates[j], attn_drop=attn_drop_rate)
                    for j in range(depth)
                ]))
            in_channels = dim
        self.norm = nn.BatchNorm2d(EMBED_DIMS[-1])
        self.head = nn.Linear(EMBED_DIMS[-1], num_classes)

    def forward_stages(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The four stage maps (B, C_s, H / 2**(s + 1), W / 2**(s + 1)), the last after
        ``norm``: what a dense-prediction neck would read."""
        outs = []
        for stage in range(1, len(self.depths) + 1):
            x = getattr(self, f'patch_embed{stage}')(x)
            for block in getattr(self, f'blocks{stage}'):
                x = block(x)
            outs.append(x)
        outs[-1] = self.norm(outs[-1])
        return tuple(outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images (B, 3, H, W)."""
        return self.head(self.forward_stages(x)[-1].flatten(2).mean(-1))


def release_shapes(depths: Sequence[int]) -> Dict[str, Tuple[int, ...]]:
    """Names and shapes of the releases' state dict (BatchNorm num_batches_tracked aside)."""
    with torch.device('meta'):
        model = ReleaseDSNet(depths)
    return {name: tuple(value.shape) for name, value in model.state_dict().items()
            if not name.endswith('num_batches_tracked')}


def random_release_state_dict(depths: Sequence[int] = DEPTHS['tiny'],
                              seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random weights in the authors' PyTorch layout, scaled to keep activations moderate."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for name, shape in release_shapes(depths).items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith('running_var'):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) > 1:
            value = noise * 0.5 / np.sqrt(np.prod(shape[1:]))
        elif name.endswith('.weight'):
            value = 1 + 0.1 * noise
        else:
            value = 0.1 * noise
        state_dict[name] = value
        if name.endswith('running_var'):
            state_dict[name.replace('running_var', 'num_batches_tracked')] = torch.tensor(100)
    return state_dict


def release_forward(state_dict: Dict[str, torch.Tensor], x: torch.Tensor,
                    depths: Sequence[int] = DEPTHS['tiny']) -> torch.Tensor:
    """Logits of the releases' network (eval mode) for images x, from release-named weights."""
    model = ReleaseDSNet(depths, num_classes=state_dict['head.weight'].shape[0])
    model.load_state_dict(state_dict, strict=True)
    return model.eval()(x)
