#!/usr/bin/env bash
# Set up mmdsnet and its OpenMMLab stack in a virtualenv (default: .venv in the repo root).
#
#   bash tools/install.sh            # the stack + mmdsnet
#   bash tools/install.sh --tests    # ... plus the test tools
#   bash tools/install.sh --legacy   # the legacy stack (torch 2.1.2, numpy 1.26) in .venv-legacy
#
# This file is the one place where the stacks' versions are pinned. A second run reuses what
# is installed and finishes in seconds. Environment:
#   MMDSNET_VENV           virtualenv to create/use (default: <repo>/.venv, --legacy: .venv-legacy)
#   PYTHON                 interpreter for a new virtualenv (default: python3.11, else python3)
#   MMDSNET_WHEEL_CACHE    where the locally built mmcv wheel is kept (default: ~/.cache/mmdsnet)
#   TORCH_CUDA_ARCH_LIST   honoured by the mmcv build when CUDA ops are built
#   MMCV_WITH_CUDA=0|1     force the mmcv CUDA ops off/on (default: on when nvcc and a GPU exist)
set -euo pipefail

MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0           # the newest mmcv that mmdet 3.3.0 accepts (< 2.2)
MMPRETRAIN_VERSION=1.2.0
MMDET_VERSION=3.3.0
MMSEG_VERSION=1.2.2          # the newest mmsegmentation; it accepts mmcv 2.0-2.1 and mmengine 0.10
# mmseg 1.2.2 imports ftfy and regex at `import mmseg.models` (for its text models) but does not
# declare them: without them no segmentation config builds.
MMSEG_UNDECLARED=(ftfy regex)
PYCOCOTOOLS_SPEC='pycocotools>=2.0.8'   # older releases break on numpy 2
SETUPTOOLS_SPEC='setuptools>=60,<70'    # mmcv's build and mmengine's mmdet:: configs need pkg_resources
# tensorboard: the training tools can log to it
STACK_EXTRAS=(wheel ninja scikit-learn onnx onnxruntime tensorboard)

WITH_TESTS=0
LEGACY=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    --legacy) LEGACY=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$LEGACY" = 1 ]; then
  # The newest torch that OpenMMLab's prebuilt mmcv 2.1.0 wheels exist for: what most mmdet 3.x
  # users run. Its extensions were compiled against numpy 1.x.
  TORCH_VERSION=2.1.2
  TORCHVISION_VERSION=0.16.2
  NUMPY_SPEC='numpy==1.26.4'
  TRANSFORMERS_SPEC='transformers>=4.52,<4.56'  # 4.56+ needs torch APIs that 2.1 lacks
  VENV_NAME=.venv-legacy
else
  TORCH_VERSION=2.14.1
  TORCHVISION_VERSION=0.29.1
  NUMPY_SPEC='numpy'
  TRANSFORMERS_SPEC='transformers>=4.52'
  VENV_NAME=.venv
fi
# transformers: tests reproduce that a recent one breaks `import mmpretrain` (see mmdsnet/compat.py);
# flake8 and isort: tests/test_lint.py enforces setup.cfg's style settings
TEST_EXTRAS=(pytest pytest-timeout "$TRANSFORMERS_SPEC" flake8 isort)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMDSNET_VENV:-$ROOT/$VENV_NAME}"
CACHE="${MMDSNET_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmdsnet}"

step() { printf '\n== %s (%d s)\n' "$*" "$SECONDS"; }
die() { printf '\ninstall.sh: %s\n' "$*" >&2; exit 1; }

# Runs pip quietly, holding torch, torchvision and numpy at the stack's versions whatever a later
# package asks for; on failure shows pip's last lines and a one-line reason instead of a wall.
pip_install() {
  local what="$1"; shift
  local log; log="$(mktemp)"
  if ! "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    rm -f "$log"
    die "could not install $what (pip arguments: $*). Check the network/package mirror, then re-run."
  fi
  rm -f "$log"
}

# True when every requirement given is already satisfied in the virtualenv.
satisfied() {
  "$PY" - "$@" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    try:
        if not req.specifier.contains(version(req.name), prereleases=True):
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
}

ensure() {  # ensure WHAT REQUIREMENT... : install the requirements unless all are satisfied
  local what="$1"; shift
  if satisfied "$@"; then echo "   $what: already there"; else pip_install "$what" "$@"; fi
}

step "virtualenv at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  BASE_PY="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
  [ -n "$BASE_PY" ] || die "no python3 found; set PYTHON=/path/to/python3.11"
  "$BASE_PY" -m venv "$VENV" || die "could not create a virtualenv with $BASE_PY (is the venv module installed?)"
fi
PY="$VENV/bin/python"
CONSTRAINTS="$VENV/mmdsnet-constraints.txt"
printf '%s\n' "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$NUMPY_SPEC" >"$CONSTRAINTS"
"$PY" -c 'import packaging' 2>/dev/null || pip_install packaging packaging

step "torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
ensure torch "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$NUMPY_SPEC"

step "build tools and mmengine $MMENGINE_VERSION"
ensure "build tools" "$SETUPTOOLS_SPEC" "${STACK_EXTRAS[@]}"
ensure mmengine "mmengine==$MMENGINE_VERSION"

step "mmcv $MMCV_VERSION with compiled ops"
if satisfied "mmcv==$MMCV_VERSION" && "$PY" -c 'import mmcv.ops' 2>/dev/null; then
  echo "   mmcv: already there, ops load"
else
  with_cuda="${MMCV_WITH_CUDA:-}"
  if [ -z "$with_cuda" ]; then
    with_cuda=0
    if command -v nvcc >/dev/null && "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
      with_cuda=1
    fi
  fi
  torch_tag="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
  py_tag="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  wheel_dir="$CACHE/mmcv-$MMCV_VERSION-$py_tag-torch$torch_tag-cuda$with_cuda"
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    echo "   building from the PyPI sdist (CUDA ops: $with_cuda); this takes several minutes"
    src="$(mktemp -d)"
    log="$src/build.log"
    "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation -q -d "$src" \
      "mmcv==$MMCV_VERSION" >"$log" 2>&1 || { tail -n 15 "$log" >&2; die "could not download the mmcv $MMCV_VERSION sdist"; }
    tar -xzf "$src"/mmcv-"$MMCV_VERSION".tar.gz -C "$src"
    # Newer torch headers refuse anything older than C++20 ("C++20 or later compatible compiler
    # is required"), which mmcv's setup.py does not ask for; older ones (2.1) build as released.
    aten_h="$("$PY" -c 'import os, torch.utils.cpp_extension as e; print(os.path.join(e.include_paths()[0], "ATen", "ATen.h"))')"
    if grep -q 'C++20 or later' "$aten_h"; then
      sed -i 's/-std=c++17/-std=c++20/g; s/c++14/c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
      grep -q 'c++20' "$src/mmcv-$MMCV_VERSION/setup.py" || die "mmcv's setup.py no longer has the C++ standard flag to patch"
    fi
    mkdir -p "$wheel_dir"
    if ! (cd "$src/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA="$with_cuda" \
          MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-deps --no-build-isolation \
          -w "$wheel_dir" . >"$log" 2>&1); then
      grep -E 'error|Error' "$log" | tail -n 15 >&2 || tail -n 15 "$log" >&2
      die "the mmcv $MMCV_VERSION build failed (full log: $log)"
    fi
    rm -rf "$src"
  fi
  pip_install mmcv --no-deps "$wheel_dir"/mmcv-*.whl
  ensure "mmcv's dependencies" addict opencv-python pyyaml yapf
  "$PY" -c 'import mmcv.ops' || die "mmcv installed but its compiled ops do not load"
fi

step "mmpretrain $MMPRETRAIN_VERSION, mmdet $MMDET_VERSION, mmsegmentation $MMSEG_VERSION, pycocotools"
ensure "mmpretrain and mmdet" "mmpretrain==$MMPRETRAIN_VERSION" "mmdet==$MMDET_VERSION" "$PYCOCOTOOLS_SPEC"
ensure mmsegmentation "mmsegmentation==$MMSEG_VERSION" "${MMSEG_UNDECLARED[@]}"

if [ "$WITH_TESTS" = 1 ]; then
  step "test tools"
  ensure "test tools" "${TEST_EXTRAS[@]}"
fi

step "mmdsnet (editable)"
if (cd / && "$PY" -c 'import mmdsnet, sys; sys.exit(not mmdsnet.__file__.startswith(sys.argv[1]))' "$ROOT") 2>/dev/null; then
  echo "   mmdsnet: already installed from $ROOT"
else
  pip_install mmdsnet --no-deps --no-build-isolation -e "$ROOT"
fi
(cd / && "$PY" -c 'import mmdsnet, mmcv.ops, mmdet, mmpretrain, mmseg.models') || die "the stack is installed but does not import"
echo
echo "ready: $VENV (activate with: source $VENV/bin/activate)"
