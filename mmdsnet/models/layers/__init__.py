from .attention_kernels import ChunkedAttention, attention, chunked_attention, query_split_attention

__all__ = ['ChunkedAttention', 'attention', 'chunked_attention', 'query_split_attention']
