"""``python -m mmdsnet.check_env``: whether mmdsnet can run in this environment, and if not, why.

It prints the versions found of every package mmdsnet needs beside the ranges it declares,
whether mmcv's compiled ops load and compute, and then each thing that is missing or out of
range, in plain words with the command that fixes it. The exit status is 0 when nothing is
missing.
"""
import importlib.util
import platform
import sys

from .requirements import (MIN_TORCH, MMCV_FIX, OPTIONAL, REQUIRED, declared_requirements,
                           in_range, installed_version, stack_problems)


def mmcv_ops_status():
    """(True, how) when mmcv's compiled ops load and compute a known NMS; else (False, why)."""
    try:
        import torch
        from mmcv.ops import get_compiling_cuda_version, nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
        _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    except Exception as error:  # an ImportError, or an OSError / undefined symbol from the .so
        first_line = (str(error).strip().splitlines() or [''])[0]
        return False, f'{type(error).__name__}: {first_line}'
    if keep.tolist() != [0, 2]:
        return False, f'nms kept boxes {keep.tolist()} of a case whose answer is [0, 2]'
    cuda = get_compiling_cuda_version()
    built = 'CPU only' if cuda == 'not available' else f'with CUDA {cuda}'
    return True, f'they load and compute (built {built})'


def segmentation_status():
    """None when MMSegmentation is not installed; else (True, version) when it is in the ``seg``
    extra's range and its models import, or (False, what is wrong and its fix)."""
    version = installed_version('mmsegmentation')
    if version is None:
        return None
    extra = declared_requirements('seg')
    fix = 'pip install ' + ' '.join(f'"{name}{spec}"' for name, spec in extra.items())
    spec = extra.get('mmsegmentation', '')
    if not in_range(version, spec):
        return False, f'mmsegmentation {version} is not in {spec}. Fix: {fix}'
    try:
        import mmseg.models  # noqa: F401
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [''])[0]
        return False, (f'mmsegmentation {version} does not import its models '
                       f'({type(error).__name__}: {first_line}). Fix: {fix}')
    return True, version


def report():
    """The whole report as lines, and whether nothing is missing."""
    ranges = declared_requirements()
    lines = [f'mmdsnet {installed_version("mmdsnet") or "(not installed with pip)"} in '
             f'{sys.prefix}: Python {platform.python_version()} on {platform.system()} '
             f'{platform.machine()}', '', f'  {"package":<16}{"found":<18}mmdsnet needs']
    for distribution, _ in REQUIRED:
        spec = ranges.get(distribution, '')
        if distribution == 'torch':
            spec = f'>={".".join(map(str, MIN_TORCH))}'
        found = installed_version(distribution) or 'missing'
        lines.append(f'  {distribution:<16}{found:<18}{spec or "any version"}')
    problems = stack_problems()
    if installed_version('mmcv') and installed_version('torch'):
        ops_ok, how = mmcv_ops_status()
        lines += ['', f"mmcv's compiled ops: {how}"]
        if not ops_ok:
            problems.append(f"mmcv's compiled ops do not work ({how}). Fix: {MMCV_FIX}.")
        import torch
        built = f'with CUDA {torch.version.cuda}' if torch.version.cuda else 'for CPU only'
        available = 'available' if torch.cuda.is_available() else 'not available'
        lines.append(f'CUDA: {available} (torch built {built})')
    lines += ['', 'Optional:']
    for distribution, module, purpose in OPTIONAL:
        found = installed_version(distribution) if importlib.util.find_spec(module) else None
        lines.append(f'  {distribution:<16}{found or "missing":<18}for {purpose}')
    segmentation = segmentation_status()
    if segmentation is not None and not segmentation[0]:
        lines += ['', f'Segmentation configs cannot run: {segmentation[1]}.']
    if problems:
        lines += ['', 'mmdsnet cannot run here until these are fixed:']
        lines += [f'  - {problem}' for problem in problems]
    else:
        lines += ['', 'Everything mmdsnet needs is installed and mmcv\'s ops work.']
    return lines, not problems


def main():
    lines, ok = report()
    print('\n'.join(lines))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
