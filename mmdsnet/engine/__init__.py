from .hooks import (PREEMPTED_EXIT_CODE, CompileHook, FiniteLossHook, Preempted, PreemptionHook,
                    RNGStateHook)
from .rank_watchdog import LOST_RANK_EXIT_CODE, RankWatchdog

__all__ = [
    'CompileHook', 'FiniteLossHook', 'LOST_RANK_EXIT_CODE', 'PREEMPTED_EXIT_CODE', 'Preempted',
    'PreemptionHook', 'RNGStateHook', 'RankWatchdog'
]
