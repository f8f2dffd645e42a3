"""Weight files in the public releases' formats, written from tiny-arch random weights.

Shared by the converter tests and the tests that load release files as they are. The weights
and the oracle that computes the releases' logits come from ``tests/dsnet_releases.py``, which
shares no code with ``mmdsnet``.
"""
import argparse
import pickle

import torch


def to_pdparams_arrays(state_dict):
    """The same weights as PaddleClas stores them: Linear weights transposed, BatchNorm
    statistics named ``_mean`` / ``_variance``, no ``num_batches_tracked``."""
    arrays = {}
    for key, value in state_dict.items():
        prefix, _, param = key.rpartition('.')
        if param == 'num_batches_tracked':
            continue
        param = {'running_mean': '_mean', 'running_var': '_variance'}.get(param, param)
        array = value.numpy()
        arrays[f'{prefix}.{param}'] = array.T.copy() if array.ndim == 2 else array.copy()
    return arrays


def write_pdparams(state_dict, path):
    """``state_dict`` as a PaddleClas ``.pdparams`` file, with Paddle's bookkeeping entry."""
    arrays = to_pdparams_arrays(state_dict)
    arrays['StructuredToParameterName@@'] = {key: f'param_{i}' for i, key in enumerate(arrays)}
    with open(path, 'wb') as file:
        pickle.dump(arrays, file, protocol=4)  # paddle.save's default protocol
    return str(path)


def write_authors_pth(state_dict, path, **entries):
    """``state_dict`` as the authors' DeiT-style training checkpoint."""
    torch.save({
        'model': state_dict,
        'optimizer': {'state': {}, 'param_groups': []},
        'lr_scheduler': {'last_epoch': 299},
        'epoch': 299,
        'args': argparse.Namespace(model='dsnet_tiny', lr=5e-4),
        **entries,
    }, path)
    return str(path)
