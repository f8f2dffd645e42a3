# What every mmdsnet config adds to its OpenMMLab runtime: importing mmdsnet (registers DSNet,
# applies the compat fixes) and two hooks of mmdsnet.engine: stop at the first NaN/inf loss (the
# last checkpoint on disk stays the last good one), and keep the random generator states in
# checkpoints so that --resume repeats exactly what the uninterrupted run would have done.
custom_imports = dict(imports=['mmdsnet'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook'), dict(type='RNGStateHook')]
