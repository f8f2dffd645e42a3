from .attention_kernels import ChunkedAttention, attention, chunked_attention

__all__ = ['ChunkedAttention', 'attention', 'chunked_attention']
