from .hooks import FiniteLossHook, RNGStateHook

__all__ = ['FiniteLossHook', 'RNGStateHook']
