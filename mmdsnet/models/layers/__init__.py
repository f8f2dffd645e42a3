from .attention_kernels import ChunkedAttention, attention, chunked_attention, is_compiling

__all__ = ['ChunkedAttention', 'attention', 'chunked_attention', 'is_compiling']
