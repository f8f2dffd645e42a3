from .finite_loss_hook import FiniteLossHook
from .rng_state_hook import RNGStateHook

__all__ = ['FiniteLossHook', 'RNGStateHook']
