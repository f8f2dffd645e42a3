from .finite_loss_hook import FiniteLossHook
from .preemption_hook import PREEMPTED_EXIT_CODE, Preempted, PreemptionHook
from .rng_state_hook import RNGStateHook

__all__ = ['FiniteLossHook', 'PREEMPTED_EXIT_CODE', 'Preempted', 'PreemptionHook', 'RNGStateHook']
