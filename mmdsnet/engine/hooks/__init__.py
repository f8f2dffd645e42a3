from .compile_hook import CompileHook
from .finite_loss_hook import FiniteLossHook
from .preemption_hook import PREEMPTED_EXIT_CODE, Preempted, PreemptionHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'CompileHook', 'FiniteLossHook', 'PREEMPTED_EXIT_CODE', 'Preempted', 'PreemptionHook',
    'RNGStateHook'
]
