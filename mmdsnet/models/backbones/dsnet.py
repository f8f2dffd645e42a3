"""DSNet: Dual-Stream Network (Mao et al., NeurIPS 2021, arXiv 2105.14734).

Computes the same function as the two public releases (the authors' PyTorch code and PaddleClas),
so their weight files load as they are and give the same logits; the key mapping is in
``mmdsnet/models/backbones/dsnet_weights.py``.

Each DS-Block splits its channels into a local half, refined by a depthwise 3x3 conv at full
resolution, and a global half, resized down to 1/32 (1/64 in stage 4) of the image and refined by
self-attention. A co-attention then lets each stream attend to the other before the global half
is resized back up and both are fused by a 1x1 conv::

    x ─ pos-enc ─ BN ─ 1x1 ─┬─ local channels ── depthwise 3x3 ───────────────┐
                            └─ global channels ─ resize ↓ ─ self-attention ──┤
                                                                   co-attention
                                                 (local ⇄ global, both directions)
                            ┌─ local ────────────────────────────────────────┘│
                            └─ global ─ resize ↑ ─────────────────────────────┘
                     concat ─ 1x1 ─ + residual ─ BN ─ MLP ─ + residual
"""
import math
from numbers import Integral, Real
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch.nn.modules.batchnorm import _BatchNorm

from mmdsnet.models.layers import (attention, fold_norm_into_conv, map_to_tokens, merge_heads,
                                   resize_bilinear, split_qkv, tokens_to_map)
from mmdsnet.registry import register_model

from .dsnet_weights import load_pretrained_strictly


class LocalStream(nn.Module):
    """Intra-scale propagation of the local channels at full resolution: x + DWConv3x3(BN(x)).

    Args:
        channels (int): Number of local channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.depthwise_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.depthwise_conv(self.norm(x))


class GlobalSelfAttention(nn.Module):
    """Intra-scale propagation of the global tokens: x + MHSA(Linear(LN(x))).

    There is no output projection: the heads are concatenated straight into the residual.

    Args:
        channels (int): Number of global channels.
        num_heads (int): Number of attention heads.
        attn_drop_rate (float): Dropout on the attention weights.
        fused_attention (bool): Use ``scaled_dot_product_attention``.
    """

    def __init__(self, channels: int, num_heads: int, attn_drop_rate: float,
                 fused_attention: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (channels // num_heads)**-0.5
        self.attn_drop_rate = attn_drop_rate
        self.fused_attention = fused_attention
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C); any (B, ..., C) with the N tokens in between works."""
        # On 2-d input a linear layer dispatches no reshapes; split_qkv's restores the batch.
        qkv = self.qkv(self.norm(tokens).flatten(0, -2))
        query, key, value = split_qkv(qkv, self.num_heads, tokens.shape[0])
        dropout_p = self.attn_drop_rate if self.training else 0.
        out = attention(query, key, value, self.scale, dropout_p, self.fused_attention)
        return tokens + merge_heads(out, tokens.shape)


class CoAttention(nn.Module):
    """Inter-scale alignment: local queries attend to global keys/values and vice versa.

    Both directions use the query/key/value projections of the streams as they enter, the same
    number of heads and one scale, ``(global_channels // num_heads) ** -0.5``.

    Args:
        local_channels (int): Number of local channels.
        global_channels (int): Number of global channels (equal to ``local_channels``).
        num_heads (int): Number of attention heads.
        attn_drop_rate (float): Dropout on the attention weights.
        fused_attention (bool): Use ``scaled_dot_product_attention``.
    """

    def __init__(self, local_channels: int, global_channels: int, num_heads: int,
                 attn_drop_rate: float, fused_attention: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (global_channels // num_heads)**-0.5
        self.attn_drop_rate = attn_drop_rate
        self.fused_attention = fused_attention
        self.local_norm = nn.BatchNorm2d(local_channels)
        self.local_qkv = nn.Conv2d(local_channels, 3 * local_channels, 1)
        self.global_norm = nn.LayerNorm(global_channels)
        self.global_qkv = nn.Linear(global_channels, 3 * global_channels)
        self.local_proj = nn.Linear(local_channels, local_channels)
        self.global_proj = nn.Linear(global_channels, global_channels)

    def forward(self, local_map: torch.Tensor,
                global_tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: local_map (B, Cl, H, W), global_tokens (B, Hg, Wg, Cg) (any (B, ..., Cg) with
        the Ng tokens in between); returns both, same shapes."""
        batch, _, height, width = local_map.shape
        # Tokens of an NCHW map are strided along channels; fused attention kernels need
        # head_dim contiguous (otherwise SDPA falls back to materialising the weights).
        local_qkv = map_to_tokens(self.local_qkv(self.local_norm(local_map))).contiguous()
        local_query, local_key, local_value = split_qkv(local_qkv, self.num_heads, batch)
        global_qkv = self.global_qkv(self.global_norm(global_tokens).flatten(0, -2))
        global_query, global_key, global_value = split_qkv(global_qkv, self.num_heads, batch)

        dropout_p = self.attn_drop_rate if self.training else 0.
        from_global = attention(local_query, global_key, global_value, self.scale, dropout_p,
                                self.fused_attention)
        from_local = attention(global_query, local_key, local_value, self.scale, dropout_p,
                               self.fused_attention)
        local_map = local_map + tokens_to_map(
            self.local_proj(merge_heads(from_global)), height, width)
        global_tokens = global_tokens + self.global_proj(
            merge_heads(from_local)).view_as(global_tokens)
        return local_map, global_tokens


class ConvMlp(nn.Module):
    """Pointwise MLP on a (B, C, H, W) map: 1x1 conv, GELU, 1x1 conv.

    Args:
        channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
    """

    def __init__(self, channels: int, hidden_channels: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DSBlock(nn.Module):
    """One DS-Block (the releases' ``MixBlock``) on a (B, C, H, W) map.

    The first ``C - C // 2`` channels after the input projection form the global stream, the
    remaining ``C // 2`` the local stream. The global stream runs on a
    ``(H // r, W // r)`` map (at least 1 x 1), ``r = global_downsample_ratio``.

    Args:
        embed_dims (int): Channels C.
        num_heads (int): Attention heads of the self- and co-attention.
        global_downsample_ratio (int): r above.
        mlp_ratio (float): MLP hidden channels / C. Defaults to 4.
        drop_path_rate (float): Stochastic depth rate of both residual branches. Defaults to 0.
        attn_drop_rate (float): Dropout on attention weights. Defaults to 0.1.
        fused_attention (bool): Use ``scaled_dot_product_attention``. Defaults to True.
        with_cp (bool): Recompute the block in the backward pass to save memory.
            Defaults to False.
        max_global_tokens (int, optional): Cap on the global map's tokens (see
            :meth:`global_map_size`). Defaults to None (no cap: the published function).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 global_downsample_ratio: int,
                 mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.,
                 attn_drop_rate: float = 0.1,
                 fused_attention: bool = True,
                 with_cp: bool = False,
                 max_global_tokens: Optional[int] = None):
        super().__init__()
        self.local_channels = embed_dims // 2
        self.global_channels = embed_dims - self.local_channels
        self.global_downsample_ratio = global_downsample_ratio
        self.max_global_tokens = max_global_tokens
        self.with_cp = with_cp

        self.position_encoding = nn.Conv2d(
            embed_dims, embed_dims, 3, padding=1, groups=embed_dims)
        self.norm = nn.BatchNorm2d(embed_dims)
        self.input_proj = nn.Conv2d(embed_dims, embed_dims, 1)
        self.local_stream = LocalStream(self.local_channels)
        self.global_stream = GlobalSelfAttention(self.global_channels, num_heads, attn_drop_rate,
                                                 fused_attention)
        self.co_attention = CoAttention(self.local_channels, self.global_channels, num_heads,
                                        attn_drop_rate, fused_attention)
        self.fuse_proj = nn.Conv2d(embed_dims, embed_dims, 1)
        self.mlp_norm = nn.BatchNorm2d(embed_dims)
        self.mlp = ConvMlp(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def fold_norms(self) -> None:
        """For inference: fold the three BatchNorms that feed an unpadded 1x1 conv into it
        (before the input projection, the local query/key/value projection and the MLP). The
        local stream's norm feeds a padded depthwise conv, where folding is not exact; it stays.
        """
        for norm_owner, norm_name, conv in ((self, 'norm', self.input_proj),
                                            (self.co_attention, 'local_norm',
                                             self.co_attention.local_qkv),
                                            (self, 'mlp_norm', self.mlp.fc1)):
            fold_norm_into_conv(getattr(norm_owner, norm_name), conv)
            setattr(norm_owner, norm_name, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def global_map_size(self, height: int, width: int) -> Tuple[int, int]:
        """The size of the global stream's map for a (height, width) block input:
        ``(height // r, width // r)``, at least 1 x 1. With ``max_global_tokens`` a larger map is
        shrunk, keeping its aspect ratio, to the largest one with at most that many tokens, so
        the co-attention's cost grows linearly with the image instead of with its square."""
        global_height = max(height // self.global_downsample_ratio, 1)
        global_width = max(width // self.global_downsample_ratio, 1)
        cap = self.max_global_tokens
        if cap is None or global_height * global_width <= cap:
            return global_height, global_width
        shrink = math.sqrt(cap / (global_height * global_width))
        global_height = max(int(global_height * shrink), 1)
        global_width = max(int(global_width * shrink), 1)
        while global_height * global_width > cap:  # only for a cap below the short side
            if global_width >= global_height:
                global_width -= 1
            else:
                global_height -= 1
        return global_height, global_width

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position_encoding(x)
        height, width = x.shape[-2:]
        global_size = self.global_map_size(height, width)

        global_map, local_map = self.input_proj(self.norm(x)).split(
            [self.global_channels, self.local_channels], dim=1)
        local_map = self.local_stream(local_map)
        # Contiguous tokens (a no-op for channels-last maps) keep the map that is upsampled
        # below channels-last as well.
        global_tokens = self.global_stream(
            map_to_tokens(resize_bilinear(global_map, global_size)).contiguous())
        local_map, global_tokens = self.co_attention(local_map, global_tokens)
        global_map = resize_bilinear(tokens_to_map(global_tokens, *global_size), (height, width))

        x = x + self.drop_path(self.fuse_proj(torch.cat([local_map, global_map], dim=1)))
        return x + self.drop_path(self.mlp(self.mlp_norm(x)))


class DSStage(nn.Module):
    """A non-overlapping patch embedding (conv, kernel = stride) followed by DS-Blocks.

    Args:
        in_channels (int): Input channels.
        embed_dims (int): Channels of the stage.
        patch_size (int): Kernel and stride of the patch embedding.
        drop_path_rates (Sequence[float]): One stochastic depth rate per block.
        **block_kwargs: Passed to every :class:`DSBlock`.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 drop_path_rates: Sequence[float], **block_kwargs):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.blocks = nn.Sequential(*[
            DSBlock(embed_dims, drop_path_rate=rate, **block_kwargs) for rate in drop_path_rates
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C, H // patch_size, W // patch_size)."""
        return self.blocks(self.patch_embed(x))


#: The releases' initialisation, DSNet's default ``init_cfg``: truncated normal (std 0.02) for
#: Linear weights with zero biases, LayerNorm weight 1 and bias 0; convolutions and BatchNorm keep
#: PyTorch's defaults.
RELEASE_INIT_CFG = [
    dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
    dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
]


@register_model
class DSNet(BaseBackbone):
    """DSNet backbone, `Dual-stream Network for Visual Recognition
    <https://arxiv.org/abs/2105.14734>`_.

    Four stages at strides 4, 8, 16, 32 with 64, 128, 320, 512 channels; the stage-4 output
    carries the network's final BatchNorm, as in the releases, so that global average pooling and
    a linear head on it give the releases' logits. Any input with both sides >= 32 is accepted
    (stage maps are floor-divided). Wrong argument types and inputs raise errors that name them;
    docs/backbone.md explains every argument at length.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` (or ``'t'``, ``'s'``, ``'b'``, any
            capitalisation), or a dict with ``embed_dims``, ``depths``, ``num_heads`` (one int
            per stage) and optionally ``mlp_ratio`` (default 4) and ``global_downsample_ratios``
            (default :meth:`default_global_downsample_ratios`). Each embed dim must be divisible
            by ``2 * num_heads``. Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages whose outputs are returned. Defaults to (3,).
        frozen_stages (int): Stages ``0..frozen_stages`` (with their output norms, and the final
            norm with stage 3) stay in eval mode with ``requires_grad=False``; -1 freezes
            nothing. MMPretrain's 0-based count: MMDetection's ResNet/Swin ``k`` is ``k - 1``
            here. Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode during training. Defaults to False.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        drop_path_rate (float): Maximum stochastic depth rate. Defaults to 0.1.
        drop_path_schedule (str): ``'per_stage'``, the releases' ramp that restarts in each
            stage, or ``'linear'`` across the whole depth. Defaults to ``'per_stage'``.
        attn_drop_rate (float): Dropout on the attention weights; the releases hard-code 0.1,
            the detection configs fine-tune with 0. Defaults to 0.1.
        channels_last (bool): Run the stages and store the conv weights channels-last (faster
            on CPU, no DDP gradient copy); same values. Defaults to True.
        fused_attention (bool): ``scaled_dot_product_attention``; False computes the weights
            explicitly, for checking, FLOP counting and export. Defaults to True.
        max_global_tokens (int, optional): Opt-in cap on every global map's tokens, keeping its
            aspect ratio, so that the co-attention grows linearly with the image area instead
            of with its square; where it applies, it is not the published function. Defaults
            to None (no cap).
        out_norm_cfg (dict, optional): A norm layer (:func:`mmcv.cnn.build_norm_layer`) on each
            returned output, as dense-prediction backbones add, e.g. ``dict(type='BN')`` or
            ``dict(type='mmpretrain.LN2d')``. Defaults to None.
        init_cfg (dict | list[dict], optional): Defaults to :data:`RELEASE_INIT_CFG` (also for
            None). ``dict(type='Pretrained', checkpoint=PATH_OR_URL)`` loads strictly
            (:func:`~mmdsnet.models.backbones.dsnet_weights.load_pretrained_strictly`): a
            classifier checkpoint with ``prefix='backbone.'``, or a release file as it is.

    Example:
        >>> import torch
        >>> from mmdsnet.models import DSNet
        >>> model = DSNet(arch='tiny', out_indices=(0, 1, 2, 3)).eval()
        >>> for out in model(torch.rand(1, 3, 224, 224)):
        ...     print(tuple(out.shape))
        (1, 64, 56, 56)
        (1, 128, 28, 28)
        (1, 320, 14, 14)
        (1, 512, 7, 7)
    """

    arch_zoo = {
        'tiny': dict(embed_dims=[64, 128, 320, 512], depths=[2, 2, 4, 1], num_heads=[1, 2, 5, 8]),
        'small': dict(embed_dims=[64, 128, 320, 512], depths=[3, 4, 8, 3],
                      num_heads=[1, 2, 5, 8]),
        'base': dict(embed_dims=[64, 128, 320, 512], depths=[3, 4, 28, 3],
                     num_heads=[1, 2, 5, 8]),
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base'}
    default_mlp_ratio = 4.
    stem_patch_size = 4
    downsample_patch_size = 2
    drop_path_schedules = ('per_stage', 'linear')

    def __init__(self,
                 arch: Union[str, Dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.1,
                 drop_path_schedule: str = 'per_stage',
                 attn_drop_rate: float = 0.1,
                 channels_last: bool = True,
                 fused_attention: bool = True,
                 max_global_tokens: Optional[int] = None,
                 out_norm_cfg: Union[Dict, None] = None,
                 init_cfg: Union[Dict, List[Dict], None] = RELEASE_INIT_CFG):
        super().__init__(init_cfg=RELEASE_INIT_CFG if init_cfg is None else init_cfg)
        _check_types(Integral, 'an int', in_channels=in_channels, frozen_stages=frozen_stages)
        _check_types(bool, 'a bool', norm_eval=norm_eval, with_cp=with_cp,
                     channels_last=channels_last, fused_attention=fused_attention)
        _check_types(Real, 'a float', drop_path_rate=drop_path_rate, attn_drop_rate=attn_drop_rate)
        _check_types(str, 'a str', drop_path_schedule=drop_path_schedule)
        _check_types((dict, type(None)), 'a dict or None', out_norm_cfg=out_norm_cfg)
        for name, rate in (('drop_path_rate', drop_path_rate), ('attn_drop_rate', attn_drop_rate)):
            if not 0 <= rate < 1:
                raise ValueError(f'DSNet {name} must be in [0, 1), got {rate}')
        arch = self._parse_arch(arch)
        self.embed_dims = arch['embed_dims']
        self.depths = arch['depths']
        self.num_heads = arch['num_heads']
        self.num_stages = len(self.depths)
        self.in_channels = in_channels
        self.min_input_size = self.stem_patch_size * self.downsample_patch_size**(
            self.num_stages - 1)
        self.out_indices = self._parse_out_indices(out_indices)
        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(
                f'frozen_stages must be in [-1, {self.num_stages - 1}], got {frozen_stages}. '
                'DSNet counts stages from 0, as MMPretrain does (k freezes stages 0..k); '
                "MMDetection's ResNet and Swin count from 1, so their frozen_stages=k is k - 1 "
                'here')
        self.frozen_stages = frozen_stages
        if max_global_tokens is not None and (not _is_a(max_global_tokens, Integral)
                                              or max_global_tokens < 1):
            raise ValueError(f'max_global_tokens must be a positive int or None, '
                             f'got {max_global_tokens!r}')
        self.norm_eval = norm_eval
        self.channels_last = channels_last
        self.deploy = False

        self.stages = nn.ModuleList()
        stage_in_channels = [in_channels, *self.embed_dims[:-1]]
        drop_path_rates = self._drop_path_rates(drop_path_rate, drop_path_schedule)
        for i in range(self.num_stages):
            self.stages.append(
                DSStage(
                    stage_in_channels[i],
                    self.embed_dims[i],
                    patch_size=self.stem_patch_size if i == 0 else self.downsample_patch_size,
                    drop_path_rates=drop_path_rates[i],
                    num_heads=self.num_heads[i],
                    global_downsample_ratio=arch['global_downsample_ratios'][i],
                    mlp_ratio=arch['mlp_ratio'],
                    attn_drop_rate=attn_drop_rate,
                    fused_attention=fused_attention,
                    with_cp=with_cp,
                    max_global_tokens=max_global_tokens))
        self.final_norm = nn.BatchNorm2d(self.embed_dims[-1])
        self.out_norms = nn.ModuleList([
            build_norm_layer(out_norm_cfg, dims)[1]
            if out_norm_cfg is not None and i in self.out_indices else nn.Identity()
            for i, dims in enumerate(self.embed_dims)
        ])
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    @classmethod
    def default_global_downsample_ratios(cls, num_stages: int) -> List[int]:
        """The releases' (8, 4, 2, 2), for any number of stages: stage i (stride
        ``4 * 2**i``) gets ``r = max(32 // stride, 2)``, so the global map is at 1/32 of the
        image where the stride allows, and always at least 2x coarser than the stage map (as in
        the releases' last stage, at stride 32, whose global map is at 1/64)."""
        strides = [cls.stem_patch_size * cls.downsample_patch_size**i for i in range(num_stages)]
        return [max(32 // stride, 2) for stride in strides]

    def _parse_arch(self, arch: Union[str, Dict]) -> Dict:
        required = ('embed_dims', 'depths', 'num_heads')
        optional = ('mlp_ratio', 'global_downsample_ratios')
        _check_types((str, dict), 'a str or a dict', arch=arch)
        if isinstance(arch, str):
            name = self.arch_aliases.get(arch.lower(), arch.lower())
            if name not in self.arch_zoo:
                raise ValueError(f'unknown DSNet arch {arch!r}; valid names are '
                                 f'{sorted(self.arch_zoo)} (or {sorted(self.arch_aliases)}, in '
                                 f'any capitalisation), or pass a dict with keys {required}')
            arch = self.arch_zoo[name]
        missing = [key for key in required if key not in arch]
        unknown = sorted(set(arch) - set(required) - set(optional))
        if missing or unknown:
            raise ValueError(f'DSNet arch dict: missing keys {missing}, unknown keys {unknown}; '
                             f'required: {required}, optional: {optional}')
        per_stage = {key: arch[key] for key in (*required, 'global_downsample_ratios')
                     if key in arch}
        _check_types([Integral], 'a sequence of ints, one per stage',
                     **{f'arch[{key!r}]': values for key, values in per_stage.items()})
        _check_types(Real, 'a number (one for all stages)',
                     **{"arch['mlp_ratio']": arch.get('mlp_ratio', self.default_mlp_ratio)})
        for key, values in per_stage.items():
            if not all(value > 0 for value in values):
                raise ValueError(f'DSNet arch[{key!r}] entries must be positive, got {values}')
        lengths = {key: len(values) for key, values in per_stage.items()}
        if len(set(lengths.values())) != 1 or not arch['depths']:
            raise ValueError('DSNet arch entries need one value per stage, for at least one '
                             f'stage; got lengths {lengths}')
        for i, (dims, heads) in enumerate(zip(arch['embed_dims'], arch['num_heads'])):
            if dims % (2 * heads) != 0:
                raise ValueError(
                    f'stage {i}: embed dim {dims} is not divisible by 2 * num_heads = '
                    f'{2 * heads}; the local and global halves must split into {heads} heads of '
                    'the same size')
        return {
            'mlp_ratio': self.default_mlp_ratio,
            'global_downsample_ratios': self.default_global_downsample_ratios(
                len(arch['depths'])),
            **arch
        }

    def _parse_out_indices(self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if _is_a(out_indices, Integral):
            out_indices = [out_indices]
        _check_types([Integral], 'an int or a sequence of ints', out_indices=out_indices)
        out_of_range = [i for i in out_indices if not -self.num_stages <= i < self.num_stages]
        if out_of_range:
            raise ValueError(f'out_indices entries {out_of_range} are out of range for '
                             f'{self.num_stages} stages')
        return tuple(sorted({index % self.num_stages for index in out_indices}))

    def _drop_path_rates(self, drop_path_rate: float, schedule: str) -> List[List[float]]:
        """Per stage, the stochastic depth rate of each block."""
        rates = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        if schedule == 'per_stage':
            return [rates[:depth] for depth in self.depths]
        if schedule == 'linear':
            starts = [sum(self.depths[:i]) for i in range(self.num_stages)]
            return [rates[start:start + depth] for start, depth in zip(starts, self.depths)]
        raise ValueError(f'drop_path_schedule must be one of {self.drop_path_schedules}, '
                         f'got {schedule!r}')

    def init_weights(self):
        """Initialise by ``init_cfg``; a ``Pretrained`` checkpoint loads strictly, because
        MMEngine's only warns about keys that do not fit and trains on with whatever did. Only
        the output norms (new for dense prediction) may be absent from the checkpoint."""
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained_strictly(
                self, **{k: v for k, v in self.init_cfg.items() if k != 'type'},
                optional_prefixes=('out_norms.', ),
                description=f'DSNet with depths {self.depths}, embed dims {self.embed_dims}')
            self._is_init = True
            return
        super().init_weights()

    def _check_input(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'DSNet expects a (B, {self.in_channels}, H, W) batch, '
                             f'got shape {tuple(x.shape)}')
        # Side by side: min() of two sizes would make torch 2.1's compiler guard on which is
        # the smaller, and compile again for each change of orientation.
        if x.shape[-2] < self.min_input_size or x.shape[-1] < self.min_input_size:
            raise ValueError(f'DSNet needs both image sides >= {self.min_input_size}, '
                             f'got shape {tuple(x.shape)}')
        if self.training and x.shape[0] == 1:
            self._check_batch_norm_statistics(x.shape)

    def _check_batch_norm_statistics(self, shape: torch.Size):
        """A training BatchNorm needs more than one value per channel. One image whose last
        stage map is 1 x 1 (a side below 64 for four stages; typically the last, short batch of
        an epoch) would otherwise end in torch's "Expected more than 1 value per channel" from
        deep inside the last stage, which names neither the batch nor a fix."""
        height, width = shape[-2:]
        for i in range(self.num_stages):
            patch_size = self.stem_patch_size if i == 0 else self.downsample_patch_size
            height, width = height // patch_size, width // patch_size
        batch_norms = [module for module in (self.final_norm, *self.stages[-1].modules())
                       if isinstance(module, _BatchNorm)]
        if height * width == 1 and any(norm.training for norm in batch_norms):
            raise ValueError(
                f'DSNet got a training batch of shape {tuple(shape)}: one image, whose last '
                'stage map is 1 x 1, so its BatchNorms would see one value per channel. Train '
                'with at least 2 images per batch (a larger batch size, and drop_last=True in '
                'the train dataloader so that the last batch of an epoch is not a single image), '
                f'images with a side of at least {2 * self.min_input_size}, or norm_eval=True')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (Tensor): Images, (B, in_channels, H, W), H and W >= 32.

        Returns:
            tuple[Tensor]: For each index in ``out_indices``, in stage order, the stage output
            (B, embed_dims[i], H // 2**(i + 2), W // 2**(i + 2)) (with floor division at every
            stage); stage 3 after the final BatchNorm.
        """
        self._check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self.num_stages - 1:
                x = self.final_norm(x)
            if i in self.out_indices:
                outs.append(self.out_norms[i](x))
        return tuple(outs)

    def switch_to_deploy(self):
        """Fold BatchNorms into the 1x1 convs they feed, for inference only (see
        :meth:`DSBlock.fold_norms`); the same function up to rounding, with fewer passes over the
        maps. Irreversible: the model can no longer train, and its state dict has fewer keys."""
        if self.deploy:
            return
        if self.training:
            raise RuntimeError('switch_to_deploy() folds running BatchNorm statistics: call it '
                               'on a model in eval mode')
        for stage in self.stages:
            for block in stage.blocks:
                block.fold_norms()
        self.deploy = True

    def _freeze_stages(self):
        for i in range(self.frozen_stages + 1):
            modules = [self.stages[i], self.out_norms[i]]
            if i == self.num_stages - 1:
                modules.append(self.final_norm)
            for module in modules:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True):
        if mode and self.deploy:
            raise RuntimeError('this DSNet has its BatchNorms folded for inference '
                               '(switch_to_deploy) and cannot be trained')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def _is_a(value, types) -> bool:
    """``isinstance(value, types)``, except that a bool is of no type but bool (isinstance counts
    it as an int, and a flag where a number goes is a mistake); ``[types]`` means a sequence of
    them (not a str)."""
    if isinstance(types, list):
        return (isinstance(value, Sequence) and not isinstance(value, str)
                and all(_is_a(item, types[0]) for item in value))
    return isinstance(value, types) and (types is bool or not isinstance(value, bool))


def _check_types(types, expected: str, **arguments) -> None:
    """Raise a TypeError naming the first of the DSNet ``arguments`` that is not of ``types``
    (as :func:`_is_a` reads it), the type it needs and what it got, instead of letting a wrong
    type fail deep inside the constructor."""
    for name, value in arguments.items():
        if not _is_a(value, types):
            raise TypeError(f'DSNet {name} must be {expected}, got {value!r} '
                            f'({type(value).__name__})')
