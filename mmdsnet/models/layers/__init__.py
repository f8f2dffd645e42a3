from .attention import attention
from .norm_folding import fold_norm_into_conv
from .resize import resize_bilinear
from .tokens import map_to_tokens, merge_heads, split_qkv, tokens_to_map

__all__ = [
    'attention', 'fold_norm_into_conv', 'map_to_tokens', 'merge_heads', 'resize_bilinear',
    'split_qkv', 'tokens_to_map'
]
