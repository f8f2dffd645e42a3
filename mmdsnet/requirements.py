"""What mmdsnet needs installed, and what stops it from importing (:func:`require_importable`).

It reads package metadata and import specs only and imports nothing from the stack, so
:mod:`mmdsnet.compat` can call :func:`require_importable` before it imports torch; the full
report is ``python -m mmdsnet.check_env``.
"""
import configparser
import importlib.metadata
import importlib.util
import os.path as osp
import re

#: The oldest torch mmdsnet runs on (``scaled_dot_product_attention(scale=...)`` came in 2.1).
#: It is not in install_requires: a lower bound there would make pip replace the torch that a
#: prebuilt mmcv was compiled for, which breaks mmcv's ops.
MIN_TORCH = (2, 1)
#: (distribution, module) of what mmdsnet imports, in install order.
REQUIRED = (('torch', 'torch'), ('torchvision', 'torchvision'), ('numpy', 'numpy'),
            ('mmengine', 'mmengine'), ('mmcv', 'mmcv'), ('mmpretrain', 'mmpretrain'),
            ('mmdet', 'mmdet'), ('pycocotools', 'pycocotools'))
#: (distribution, module, what needs it) of what only some tools use.
OPTIONAL = (('tensorboard', 'tensorboard', 'TensorBoard logging'),
            ('onnx', 'onnx', 'tools/deploy/export_onnx.py'),
            ('onnxruntime', 'onnxruntime', 'checking the ONNX export'),
            ('scikit-learn', 'sklearn', 'the quickstart (its digits data set)'),
            ('mmsegmentation', 'mmseg', 'the segmentation configs (`pip install -e .[seg]`)'))
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMCV_FIX = ('mmcv 2.1.0 (the newest mmdet 3.3 accepts) must be compiled for the torch installed: '
            'OpenMMLab publishes prebuilt wheels up to torch 2.1 (`mim install mmcv==2.1.0`); '
            'for a newer torch, `bash tools/install.sh` in the mmdsnet repository builds one')


def installed_version(distribution):
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def release(version):
    """The leading numbers of a version string: '2.1.2+cu121' -> (2, 1, 2)."""
    return tuple(int(part) for part in re.findall(r'\d+', version.split('+')[0])[:3])


def declared_requirements(extra=None):
    """Distribution name to the version range in mmdsnet's install_requires, or in one of its
    extras (``extra='seg'``); '' for any version.

    Read from setup.cfg in a checkout (where an editable install's metadata can be older), else
    from the installed mmdsnet's metadata.
    """
    setup_cfg = osp.join(ROOT, 'setup.cfg')
    if osp.isfile(setup_cfg):
        config = configparser.ConfigParser()
        config.read(setup_cfg)
        section, key = ('options', 'install_requires') if extra is None else (
            'options.extras_require', extra)
        lines = config.get(section, key, fallback='').split('\n')
    else:
        marker = None if extra is None else f'extra == "{extra}"'
        lines = [line for line in importlib.metadata.requires('mmdsnet') or []
                 if (marker in line if marker else 'extra ==' not in line)]
    ranges = {}
    for line in lines:
        match = re.match(r'\s*([A-Za-z0-9_.-]+)\s*(.*)', line.split(';')[0])
        if match:
            specs = match.group(2).replace(' ', '').split(',')
            ranges[match.group(1).lower()] = ','.join(
                sorted(specs, key=lambda spec: spec.startswith('<')))
    return ranges


def in_range(version, spec):
    if not spec:
        return True
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # cannot tell; pip checked the ranges when it installed mmdsnet
        return True
    return SpecifierSet(spec).contains(version, prereleases=True)


def stack_problems():
    """What stops mmdsnet from importing or that is outside its declared ranges, each in plain
    words with its fix. Uses package metadata and import specs only (no imports)."""
    ranges = declared_requirements()
    problems = []
    for distribution, module in REQUIRED:
        version = installed_version(distribution)
        spec = ranges.get(distribution, '')
        wanted = f'"{distribution}{spec}"'
        if importlib.util.find_spec(module) is None:
            fix = MMCV_FIX if distribution == 'mmcv' else f'pip install {wanted}'
            problems.append(f'{distribution} is not installed. Fix: {fix}.')
        elif version is None:
            continue  # importable without metadata (a source checkout on the path): trust it
        elif distribution == 'torch' and release(version) < MIN_TORCH:
            problems.append(
                f'torch {version} is older than the {".".join(map(str, MIN_TORCH))} mmdsnet '
                'needs. Fix: install torch >= 2.1 with a torchvision and an mmcv built for it '
                f'(README.md, "Installing into an existing environment"); {MMCV_FIX}.')
        elif not in_range(version, spec):
            fix = MMCV_FIX if distribution == 'mmcv' else f'pip install {wanted}'
            problems.append(f'{distribution} {version} is installed, but mmdsnet needs '
                            f'{distribution}{spec}. Fix: {fix}.')
    return problems


def require_importable():
    """Raise an ImportError that lists every problem of :func:`stack_problems`, if any."""
    problems = stack_problems()
    if problems:
        raise ImportError('mmdsnet cannot run in this environment:\n  - ' +
                          '\n  - '.join(problems) +
                          '\n(`python -m mmdsnet.check_env` reports the whole environment)')
