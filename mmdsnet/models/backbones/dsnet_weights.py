"""DSNet's weights, one way: a file is read safely, converted if it is a release, and loaded
strictly.

::

    URL ─ load_from_url: downloaded once into torch.hub.get_dir()/checkpoints ─┐
    file ──────────────────────────────────────────────────────────────────────┴─ read_weights
    read_weights ─┬─ .pth: mmdsnet.checkpoint.load_torch_file (allowlist, checksum)
                  └─ .pdparams: mmdsnet.checkpoint.load_pdparams ─ paddle_to_release_layout
         ─ a release's keys? ─ convert_release_state_dict ─ load_pretrained_strictly ─ model

The authors' PyTorch release and PaddleClas share one key layout::

    patch_embed{s}.proj.{weight,bias}          s = 1..4, patch embedding of stage s
    blocks{s}.{j}.{module}.{param}             block j of stage s (a ``MixBlock``)
    norm.{param}                               BatchNorm2d after stage 4
    head.{weight,bias}                         Linear classifier

:func:`convert_release_state_dict` turns such a state dict (torch layout) into the state dict of
an MMPretrain ``ImageClassifier`` with a DSNet backbone and a ``LinearClsHead``;
:func:`paddle_to_release_layout` first turns PaddleClas arrays into the torch layout.
``DSNet(init_cfg=dict(type='Pretrained', ...))`` runs :func:`load_pretrained_strictly`;
``import mmdsnet`` makes :func:`read_weights` MMEngine's loader for local files and
:func:`load_from_url` its loader for ``http://`` and ``https://``
(:func:`register_weights_loader`), so that ``load_from``, ``--resume`` and ``get_model(...,
pretrained=...)`` read every file safely and take a release file as it is. The converters in
``tools/model_converters`` write the same conversion to a file.
"""
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
from collections import OrderedDict
from http.client import HTTPException
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

from mmdsnet.checkpoint import load_pdparams, load_torch_file
from mmdsnet.version import __version__

# Release module name -> ours, inside one block, in our modules' registration order.
BLOCK_MODULES = OrderedDict([
    ('pos_embed', 'position_encoding'),
    ('norm1', 'norm'),
    ('conv1', 'input_proj'),
    ('norm_conv1', 'local_stream.norm'),
    ('conv', 'local_stream.depthwise_conv'),
    ('norm_sa1', 'global_stream.norm'),
    ('channel_up', 'global_stream.qkv'),
    ('norm_conv2', 'co_attention.local_norm'),
    ('cross_channel_up_conv', 'co_attention.local_qkv'),
    ('norm_sa2', 'co_attention.global_norm'),
    ('cross_channel_up_sa', 'co_attention.global_qkv'),
    ('fuse_channel_conv', 'co_attention.local_proj'),
    ('fuse_channel_sa', 'co_attention.global_proj'),
    ('conv2', 'fuse_proj'),
    ('norm2', 'mlp_norm'),
    ('mlp.fc1', 'mlp.fc1'),
    ('mlp.fc2', 'mlp.fc2'),
])
BATCH_NORMS = frozenset({'norm1', 'norm_conv1', 'norm_conv2', 'norm2', 'norm'})
BATCH_NORM_PARAMS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
AFFINE_PARAMS = ('weight', 'bias')
# PaddlePaddle's BatchNorm statistics names.
PADDLE_PARAM_NAMES = {'_mean': 'running_mean', '_variance': 'running_var'}

BACKBONE_PREFIX = 'backbone.'
HEAD_PREFIX = 'head.fc.'
#: Stage 1's patch embedding: every release state dict has it, and no other checkpoint we know.
RELEASE_SIGNATURE_KEY = 'patch_embed1.proj.weight'
#: What :func:`load_from_url` downloads (MMEngine's ``load_from_http`` took these before).
URL_PREFIXES = ('http://', 'https://')

_BLOCK_KEY = re.compile(r'blocks(\d+)\.(\d+)\.(.+)\.(\w+)')
_PATCH_EMBED_KEY = re.compile(r'patch_embed(\d+)\.proj\.(\w+)')


def _params(release_module: str) -> tuple:
    return BATCH_NORM_PARAMS if release_module in BATCH_NORMS else AFFINE_PARAMS


def release_key_to_mmdsnet(key: str) -> Optional[str]:
    """Our ``ImageClassifier`` key for one release key, or None if the key is not a release key.

    Example: ``blocks2.0.cross_channel_up_conv.weight`` ->
    ``backbone.stages.1.blocks.0.co_attention.local_qkv.weight``; ``norm.running_mean`` ->
    ``backbone.final_norm.running_mean``; ``head.weight`` -> ``head.fc.weight``.
    """
    match = _BLOCK_KEY.fullmatch(key)
    if match:
        stage, block, module, param = match.groups()
        if int(stage) >= 1 and module in BLOCK_MODULES and param in _params(module):
            return (f'{BACKBONE_PREFIX}stages.{int(stage) - 1}.blocks.{int(block)}.'
                    f'{BLOCK_MODULES[module]}.{param}')
        return None
    match = _PATCH_EMBED_KEY.fullmatch(key)
    if match:
        stage, param = match.groups()
        if int(stage) >= 1 and param in AFFINE_PARAMS:
            return f'{BACKBONE_PREFIX}stages.{int(stage) - 1}.patch_embed.{param}'
        return None
    module, _, param = key.partition('.')
    if module == 'norm' and param in BATCH_NORM_PARAMS:
        return f'{BACKBONE_PREFIX}final_norm.{param}'
    if module == 'head' and param in AFFINE_PARAMS:
        return f'{HEAD_PREFIX}{param}'
    return None


def infer_depths(keys) -> List[int]:
    """Blocks per stage of a release state dict, from its ``patch_embed{s}`` and ``blocks{s}.{j}``
    keys (a stage with a patch embedding and no blocks counts 0)."""
    depths: Dict[int, int] = {}
    for key in keys:
        match = _PATCH_EMBED_KEY.fullmatch(key)
        if match:
            depths.setdefault(int(match.group(1)), 0)
        match = _BLOCK_KEY.fullmatch(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    num_stages = max(depths, default=0)
    return [depths.get(stage, 0) for stage in range(1, num_stages + 1)]


def release_keys(depths: List[int], with_head: bool = True) -> List[str]:
    """Every key of a release state dict with these depths, in our modules' order."""
    keys = []
    for stage, depth in enumerate(depths, start=1):
        keys += [f'patch_embed{stage}.proj.{param}' for param in AFFINE_PARAMS]
        for block in range(depth):
            keys += [
                f'blocks{stage}.{block}.{module}.{param}' for module in BLOCK_MODULES
                for param in _params(module)
            ]
    keys += [f'norm.{param}' for param in BATCH_NORM_PARAMS]
    if with_head:
        keys += [f'head.{param}' for param in AFFINE_PARAMS]
    return keys


def convert_release_state_dict(state_dict: Mapping[str, torch.Tensor],
                               backbone_only: bool = False) -> 'OrderedDict[str, torch.Tensor]':
    """Map a release state dict (torch layout) onto an MMPretrain ``ImageClassifier``.

    The result loads with ``strict=True`` into ``ImageClassifier(backbone=dict(type='DSNet',
    arch=...), neck=dict(type='GlobalAveragePooling'), head=dict(type='LinearClsHead', ...))``.
    BatchNorm ``num_batches_tracked`` entries may be absent from the source (PaddlePaddle has
    none) and are then set to 0.

    Args:
        state_dict (Mapping[str, Tensor]): The release's ``model.state_dict()``.
        backbone_only (bool): Keep only the ``backbone.*`` keys (the head may then be absent
            from the source), for ``init_cfg=dict(type='Pretrained', prefix='backbone.')``.

    Returns:
        OrderedDict[str, Tensor]: ``backbone.*`` (and unless ``backbone_only``, ``head.fc.*``)
        keys in our modules' order; the tensors are the source's, not copies.

    Raises:
        ValueError: listing the source keys that are not release keys and the release keys the
            source lacks.
    """
    expected = release_keys(infer_depths(state_dict), with_head=not backbone_only)
    unknown = sorted(key for key in state_dict if release_key_to_mmdsnet(key) is None)
    missing = [
        key for key in expected
        if key not in state_dict and not key.endswith('.num_batches_tracked')
    ]
    if unknown or missing:
        raise ValueError('not a DSNet release state dict: '
                         f'{len(unknown)} unknown keys {unknown}, {len(missing)} missing keys '
                         f'{missing}')
    converted = OrderedDict()
    for key in expected:
        value = state_dict[key] if key in state_dict else torch.tensor(0, dtype=torch.long)
        converted[release_key_to_mmdsnet(key)] = value
    return converted


def paddle_to_release_layout(arrays: Mapping[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """PaddleClas ``.pdparams`` arrays -> a state dict in the authors' PyTorch layout.

    Paddle stores Linear weights as [in, out] (transposed here to [out, in]; every 2-D weight in
    DSNet is a Linear, convolution weights are 4-D) and names the BatchNorm statistics
    ``_mean`` / ``_variance``. Key names are otherwise the same.

    Args:
        arrays (Mapping[str, numpy.ndarray]): e.g. from :func:`mmdsnet.checkpoint.load_pdparams`.

    Returns:
        dict[str, Tensor]: Contiguous tensors that own their memory.
    """
    state_dict = {}
    for key, array in arrays.items():
        module, dot, param = key.rpartition('.')
        if param == 'weight' and array.ndim == 2:
            array = array.T
        key = module + dot + PADDLE_PARAM_NAMES.get(param, param)
        state_dict[key] = torch.from_numpy(np.array(array, order='C'))
    return state_dict


def converted_checkpoint(state_dict: Mapping[str, torch.Tensor], backbone_only: bool = False,
                         **meta) -> dict:
    """:func:`convert_release_state_dict` wrapped as an MMEngine checkpoint.

    Its meta names ``backbone_prefix``, so that ``init_cfg=dict(type='Pretrained')`` without a
    prefix loads the backbone part into a DSNet (:func:`load_pretrained_strictly`).

    Returns:
        dict: ``{'state_dict': ..., 'meta': {'depths': [...], 'embed_dims': [...],
        'backbone_prefix': 'backbone.', 'mmdsnet_version': ..., **meta}}``.
    """
    converted = convert_release_state_dict(state_dict, backbone_only)
    depths = infer_depths(state_dict)
    embed_dims = [
        int(state_dict[f'patch_embed{stage}.proj.weight'].shape[0])
        for stage in range(1, len(depths) + 1)
    ]
    meta = dict(depths=depths, embed_dims=embed_dims, backbone_prefix=BACKBONE_PREFIX,
                mmdsnet_version=__version__, **meta)
    return {'state_dict': converted, 'meta': meta}


def find_release_state_dict(checkpoint: Any) -> Optional[Mapping[str, torch.Tensor]]:
    """The release weights in a loaded ``.pth``: the ``model`` entry of the authors' DeiT-style
    training checkpoint, or the file itself when it is a bare release state dict; None for any
    other checkpoint (recognised by :data:`RELEASE_SIGNATURE_KEY`)."""
    if not isinstance(checkpoint, Mapping):
        return None
    for candidate in (checkpoint.get('model'), checkpoint):
        if isinstance(candidate, Mapping) and RELEASE_SIGNATURE_KEY in candidate:
            return candidate
    return None


def read_weights(filename: str, map_location: Any = None) -> Any:
    """Read a local weight file safely, converting the public releases' weights in memory.

    A PaddleClas ``.pdparams`` file, or a ``.pth`` that holds release weights (see
    :func:`find_release_state_dict`; the ``model`` weights, not ``model_ema``), becomes the
    :func:`converted_checkpoint` of an ``ImageClassifier``: ``backbone.*`` keys, and
    ``head.fc.*`` where the file has the release's head (``.pdparams`` weights stay on the
    CPU). Any other file is returned as :func:`mmdsnet.checkpoint.load_torch_file` loads it.

    Raises:
        ValueError: A release file with keys that are not the release's, or without some
            (listing them).
    """
    if str(filename).endswith('.pdparams'):
        state_dict = paddle_to_release_layout(load_pdparams(filename))
        source_format = 'PaddleClas .pdparams'
    else:
        checkpoint = load_torch_file(filename, map_location)
        state_dict = find_release_state_dict(checkpoint)
        if state_dict is None:
            return checkpoint
        source_format = "DSNet authors' PyTorch release"
    has_head = any(key.startswith('head.') for key in state_dict)
    try:
        return converted_checkpoint(state_dict, backbone_only=not has_head,
                                    source=osp.basename(filename), source_format=source_format)
    except ValueError as err:
        raise ValueError(f'{filename}: {err}') from None


class WeightsURLError(RuntimeError):
    """Weights given by URL could not be downloaded, or the file downloaded or found in the
    cache cannot be read. The message names the URL, the cache path and what to do instead."""


def cached_weights_path(url: str) -> str:
    """Where :func:`load_from_url` keeps the file at ``url``.

    Args:
        url (str): An ``http://`` or ``https://`` URL.

    Returns:
        str: ``torch.hub.get_dir()/checkpoints/<the URL's file name>``, the cache that torch's
        ``load_state_dict_from_url`` and MMEngine's http loader use as well (``$TORCH_HOME/hub``,
        by default ``~/.cache/torch/hub``).
    """
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def _url_error(url: str, cached: str, problem: str, fix: str) -> WeightsURLError:
    return WeightsURLError(
        f'{problem}\n  URL:   {url}\n  cache: {cached}\n  Fix: {fix}, or pass a local file '
        'instead of the URL: --cfg-options model.backbone.init_cfg.checkpoint=PATH (a '
        "config's pretrained backbone), --cfg-options load_from=PATH, get_model(name, "
        'pretrained=PATH)')


def _download_and_read(url: str, cached: str, map_location: Any) -> Any:
    """Download ``url`` into a new folder next to ``cached``, read it, and only then move it to
    ``cached``: a download that cannot be read (cut off, or a file that is refused) is deleted,
    never cached. (``torch.hub.download_url_to_file`` renames a complete download into place,
    but takes a response that the server cut short for a complete one.)"""
    folder = osp.dirname(cached)
    print_log(f'Downloading {url} to {cached}', logger='current')
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix='.download-', dir=folder) as temp:
            download = osp.join(temp, osp.basename(cached))
            torch.hub.download_url_to_file(url, download, progress=sys.stderr.isatty())
            try:
                loaded = read_weights(download, map_location)
            except (ValueError, pickle.UnpicklingError) as err:
                raise _url_error(
                    url, cached, 'the file downloaded from the URL cannot be used, so it was '
                    f'deleted, not cached: {type(err).__name__}: {err}',
                    'run again to download it again, download the URL to the cache path '
                    'yourself') from None
            os.replace(download, cached)
    except (OSError, HTTPException) as err:
        raise _url_error(
            url, cached, f'could not download the weights: {type(err).__name__}: {err}',
            'download the URL to the cache path yourself (a file there is used without '
            'downloading)') from None
    return loaded


def _read_cached(url: str, cached: str, map_location: Any) -> Any:
    """Read the cached copy of ``url``; a damaged one is named, kept (it may be a file that the
    user put there) and never silently reused."""
    print_log(f'Loading {url} from the cache: {cached}', logger='current')
    try:
        return read_weights(cached, map_location)
    except (ValueError, pickle.UnpicklingError) as err:
        raise _url_error(
            url, cached, f'the cached copy of the URL cannot be used: {type(err).__name__}: '
            f'{err}', f'delete {cached} to download it again, replace it with a copy of the URL '
            'that you downloaded yourself') from None


def load_from_url(url: str, map_location: Any = None) -> Any:
    """Read weights given by URL: downloaded once into :func:`cached_weights_path`, then read by
    :func:`read_weights` (safe unpickling, checksum, release files converted in memory).

    A download is read before it is moved into the cache, so the cache holds no file that could
    not be read; a cached file that cannot be read raises, naming it, instead of being used or
    replaced. In a distributed run, as with MMEngine's http loader, rank 0 downloads first and
    the other ranks then read the cached file (or, where the cache is not shared, download it
    themselves); a rank 0 that fails still reaches the barrier, so no rank waits forever.
    ``import mmdsnet`` makes this MMEngine's loader for ``http://`` and ``https://``.

    Args:
        url (str): An ``http://`` or ``https://`` URL; its file name (``.pdparams`` or not)
            decides how the file is read, as for a local path.
        map_location: Passed to :func:`read_weights`. Defaults to None.

    Returns:
        What :func:`read_weights` returns for the file.

    Raises:
        WeightsURLError: The download failed (offline, an HTTP error, a full disk), the
            downloaded file cannot be read (cut off, refused by the safe unpickler, a release
            file with other keys), or the cached file cannot be read. The message names the URL,
            the cache path and how to pass a local file instead.
    """
    cached = cached_weights_path(url)
    rank, world_size = get_dist_info()
    if rank > 0:
        barrier()  # rank 0 downloads first
    try:
        if osp.isfile(cached):
            return _read_cached(url, cached, map_location)
        return _download_and_read(url, cached, map_location)
    finally:
        if rank == 0 and world_size > 1:
            barrier()


def register_weights_loader() -> None:
    """Make :func:`read_weights` MMEngine's loader for local paths and :func:`load_from_url` its
    loader for ``http://`` and ``https://`` (``import mmdsnet`` calls it).

    MMEngine's own loaders unpickle anything on torch < 2.6 and refuse Runner checkpoints on
    torch >= 2.6 (:mod:`mmdsnet.compat.torch_weights_only`); these read both safely.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=read_weights, force=True)
    CheckpointLoader.register_scheme(prefixes=URL_PREFIXES, loader=load_from_url, force=True)


def load_pretrained_strictly(model: torch.nn.Module, checkpoint: str, prefix: Optional[str] = None,
                             map_location: Any = 'cpu',
                             optional_prefixes: Tuple[str, ...] = (),
                             description: Optional[str] = None) -> None:
    """Load ``checkpoint`` (with ``prefix`` stripped) into ``model``, refusing any misfit.

    MMEngine's ``init_cfg=dict(type='Pretrained')`` only warns about missing, unexpected and
    mis-shaped keys and trains on with whatever fitted, so a checkpoint of another arch went
    unnoticed; this raises instead. A leading ``module.`` (DDP) is dropped from every key.

    Args:
        model (nn.Module): The module to load into.
        checkpoint (str): A local path, read by :func:`read_weights` (release files converted
            to a classifier checkpoint on the way); an ``http(s)://`` URL, downloaded once and
            read the same way by :func:`load_from_url`; or another URL, read by MMEngine's
            loader for its scheme.
        prefix (str, optional): Only keys starting with it are loaded, without it (e.g.
            ``'backbone.'`` for a classifier checkpoint). Defaults to None: the
            ``backbone_prefix`` that the checkpoint's meta names (release weights, converted),
            else all keys, from the file's ``state_dict`` entry when it has one.
        map_location: Passed to the loader. Defaults to ``'cpu'``.
        optional_prefixes (tuple[str]): Model keys that may be absent from the checkpoint
            (parts added for another task, which keep their initialisation).
        description (str, optional): How the error names the model. Defaults to its class name.

    Raises:
        ValueError: The file holds no state dict, or keys are missing, unexpected or of another
            shape (listing up to 8 of each).
        WeightsURLError: See :func:`load_from_url`.
    """
    if checkpoint.startswith(URL_PREFIXES):
        loaded = load_from_url(checkpoint, map_location)
    elif '://' in checkpoint:
        loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location)
    else:
        loaded = read_weights(checkpoint, map_location)
    if not isinstance(loaded, dict):
        raise ValueError(f'{checkpoint} holds a {type(loaded).__name__}, not a checkpoint or a '
                         'state dict')
    state_dict = loaded.get('state_dict', loaded)
    prefix = prefix or (loaded.get('meta') or {}).get('backbone_prefix')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = {key[len(prefix):]: value for key, value in state_dict.items()
                      if key.startswith(prefix)}
    state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
    own = model.state_dict()
    missing = sorted(key for key in own
                     if key not in state_dict and not key.startswith(optional_prefixes))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [f'{key}: checkpoint {tuple(state_dict[key].shape)} != model '
                  f'{tuple(value.shape)}' for key, value in own.items()
                  if key in state_dict and state_dict[key].shape != value.shape]
    if missing or unexpected or mismatched:
        def listing(title, keys):
            more = f', ... ({len(keys)} in all)' if len(keys) > 8 else ''
            shown = ', '.join(keys[:8]) + more
            return f'\n  {title}: {shown}' if keys else ''
        raise ValueError(
            f'{checkpoint} (prefix {prefix!r}) does not fit '
            f'{description or type(model).__name__}:' + listing('missing', missing) +
            listing('unexpected', unexpected) + listing('shape mismatch', mismatched) +
            '\n  Check the arch, and the prefix: a classifier checkpoint needs prefix="backbone." '
            "(the releases' .pth and .pdparams files load as they are, with or without it)")
    model.load_state_dict(state_dict, strict=False)
