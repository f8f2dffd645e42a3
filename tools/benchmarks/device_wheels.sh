#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what tools/benchmarks/gpu_benchmarks.sh installs on the lent GPU
# machine, which has no network, Python 3.12, torch, timm, numpy, scipy, matplotlib, opencv
# (headless), rich, pyyaml, regex and einops, and no OpenMMLab:
#
#   bash tools/benchmarks/device_wheels.sh      # here, with network; then carry .whl
#
# PYTHON (default: the .venv that tools/install.sh made, else python3) must have pkg_resources
# (setuptools < 70): pip runs mmcv's setup.py to download its sdist.
#
# The OpenMMLab releases of tools/install.sh, the dependencies that image lacks (named in their
# wheels' Requires-Dist), setuptools < 70 for mmcv's build (pkg_resources) and mmcv's sdist,
# which gpu_benchmarks.sh builds there with CUDA.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/.whl"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
PACKAGES=(
  mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2
  addict termcolor yapf platformdirs                # mmengine's
  mat4py model-index ordered-set importlib-metadata==8.7.0  # mmpretrain's (10.x needs lazy_importer)
  pycocotools shapely terminaltables                # mmdet's
  prettytable wcwidth ftfy                          # mmsegmentation's (ftfy undeclared)
  setuptools==69.5.1
)
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DEST" "${PACKAGES[@]}"
"$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$DEST" mmcv==2.1.0
ls -l "$DEST"
du -sh "$DEST"
