# What every mmdsnet config adds to its OpenMMLab runtime: importing mmdsnet (registers DSNet,
# applies the compat fixes) and four hooks of mmdsnet.engine: compile the model's backbone and
# neck when `compile` is set (MMEngine's own switch compiles the optimizer step too, and fails);
# stop at the first NaN/inf loss (the last checkpoint on disk stays the last good one); keep the
# random generator states in checkpoints so that --resume repeats exactly what the uninterrupted
# run would have done; and on SIGTERM/SIGUSR1 (preemption, a time limit) checkpoint the
# iteration in flight and exit with 75.
custom_imports = dict(imports=['mmdsnet'], allow_failed_imports=False)
custom_hooks = [
    dict(type='CompileHook'),
    dict(type='FiniteLossHook'),
    dict(type='RNGStateHook'),
    dict(type='PreemptionHook'),
]
# With several processes, each one stops (exit code 69), naming the lost rank, when another has
# sent no heartbeat for `timeout` seconds, instead of waiting for it in a collective until the
# process group times out (env_cfg.dist_cfg.timeout, 30 minutes). None turns the watchdog off.
rank_watchdog = dict(interval=5, timeout=60)
