#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md, measured in one call on a machine without network access
# whose python3 already has torch (CUDA), timm and nvcc: the lent H100/H200.
#
#   bash tools/benchmarks/gpu_benchmarks.sh OUT_DIR [STEP...]
#
# STEPs (default: all, in this order): classification dense resize profile compile study
# compile_train compile_dense tests segmentor detector compile_detector study_detector. study
# and study_detector time the kernel choices of tools/benchmarks/kernel_study.py. The compile_*
# steps measure every model eager and compiled in one run (benchmark.py --compile): compile_train
# the classification training step (DSNet-T/S/B, Swin-T), compile_dense the dense forward +
# backward at 2 x 800 x 1344, compile_detector the Mask R-CNN step with the backbone and neck
# compiled as the configs' compile switch does. segmentor, likewise eager and compiled, the
# UperNet training step at 2 x 512 x 512 of DSNet-S beside MMSegmentation's Swin-T, and the
# DSNet-S Semantic FPN's. Their compiles share one inductor cache
# ($INDUCTOR_CACHE, default /tmp/mmdsnet_inductor), so a second call on a warm machine skips
# most of the compiling. Without detector, compile_detector or study_detector, mmcv's CUDA ops
# are not built, and the benchmarks get every core (inductor compiles on as many as it sees).
#
# DEADLINE_S=N ends the call within about N seconds: each step's own limit is cut to the time
# left, and a step that would start with less than a minute left is skipped (named in run.log),
# so that a device budget returns the JSON of the steps that fit, most important first. The
# compiled-training figures in a 15-minute budget (one call of 9 minutes, then, on the still
# warm machine, the detector's):
#   DEADLINE_S=540 bash tools/benchmarks/gpu_benchmarks.sh OUT compile_train compile_dense
#   DEADLINE_S=540 bash tools/benchmarks/gpu_benchmarks.sh OUT2 compile_detector
#
# Needs, in .whl/ of the repo (tools/benchmarks/device_wheels.sh fetches them, where there is
# network; carry .whl): the pure-Python wheels of mmengine, mmpretrain, mmdet,
# mmsegmentation (and ftfy and regex, which it imports without declaring them) and their small
# dependencies, setuptools < 70 (mmcv's build imports pkg_resources), and mmcv's sdist
# (mmcv-2.1.0.tar.gz). Only the Mask R-CNN step runs mmcv's compiled ops, and building them with
# CUDA takes about 5 minutes, so the build runs in the background on the cores that the
# benchmarks leave free, while classification, the backbones and the segmentors run against
# mmcv's Python code with a placeholder for the compiled module (mmdet and mmseg import mmcv.ops;
# any call of an op would raise). Each step has its own time limit; OUT_DIR gets one JSON per
# step and run.log.
set -uo pipefail

OUT_DIR="${1:?usage: gpu_benchmarks.sh OUT_DIR [STEP...]}"
shift
STEPS=" ${*:-classification dense resize profile compile study compile_train compile_dense tests \
  segmentor detector compile_detector study_detector} "
wanted() { [[ "$STEPS" == *" $1 "* ]]; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
SITE=/tmp/mmdsnet_site
BUILD=/tmp/mmdsnet_mmcv
BENCH_CORES=0-3
BUILD_CORES=4-$(($(nproc) - 1))
export TORCHINDUCTOR_CACHE_DIR="${INDUCTOR_CACHE:-/tmp/mmdsnet_inductor}"
mkdir -p "$OUT_DIR" "$SITE" "$BUILD" "$TORCHINDUCTOR_CACHE_DIR"
LOG="$OUT_DIR/run.log"
exec > >(tee -a "$LOG") 2>&1
cd "$ROOT"

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
DEADLINE="${DEADLINE_S:+$(($(date +%s) + DEADLINE_S))}"

# run_script SCRIPT NAME SECONDS MMCV_DIR ARGS...: tools/benchmarks/SCRIPT on the benchmark cores,
# JSON to OUT_DIR/NAME.json; within SECONDS, and within DEADLINE_S if set
run_script() {
  local script="$1" name="$2" limit="$3" mmcv_dir="$4"; shift 4
  if [ -n "$DEADLINE" ]; then
    local left=$((DEADLINE - $(date +%s)))
    if [ "$left" -lt 60 ]; then
      log "skip $name: ${left} s of DEADLINE_S=$DEADLINE_S left"
      return
    fi
    [ "$left" -lt "$limit" ] && limit="$left"
  fi
  log "start $name (limit $limit s, cores $BENCH_CORES)"
  PYTHONPATH="$mmcv_dir:$SITE:$ROOT" PYTHONUNBUFFERED=1 timeout "$limit" \
    taskset -c "$BENCH_CORES" "$PY" "tools/benchmarks/$script" --device cuda \
    --out "$OUT_DIR/$name.json" "$@"
  log "end $name (exit $?)"
}

# run NAME SECONDS MMCV_DIR ARGS...: benchmark.py, as run_script
run() { run_script benchmark.py "$@"; }

# build_mmcv DIR JOBS: mmcv 2.1.0 with its CUDA ops, installed into DIR/site
build_mmcv() {
  local dir="$1" jobs="$2"
  mkdir -p "$dir/src" && tar -xzf .whl/mmcv-2.1.0.tar.gz -C "$dir/src" --strip-components=1
  # torch >= 2.6 headers refuse anything older than C++20 (as in tools/install.sh).
  sed -i 's/-std=c++17/-std=c++20/g; s/c++14/c++20/g' "$dir/src/setup.py"
  (cd "$dir/src" && PYTHONPATH="$SITE" MMCV_WITH_OPS=1 FORCE_CUDA=1 \
     TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="$jobs" \
     "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$dir" . >"$dir/build.log" 2>&1 \
   && "$PY" -m pip install -q --no-index --no-deps --target "$dir/site" "$dir"/mmcv-*.whl) \
    || { log "mmcv build in $dir failed:"; grep -E 'error' "$dir/build.log" | tail -n 20; return 1; }
}

log "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || exit 1
"$PY" -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__)'

if ! { wanted detector || wanted compile_detector || wanted study_detector; } \
    || [ -n "$(ls "$BUILD"/cuda/site/mmcv/_ext*.so 2>/dev/null)" ]; then
  cuda_build=
else
  log "mmcv with CUDA ops, in the background on cores $BUILD_CORES"
  taskset -c "$BUILD_CORES" bash -c "$(declare -f log build_mmcv); SITE=$SITE PY=$PY; \
    build_mmcv $BUILD/cuda $(($(nproc) - 4))" &
  cuda_build=$!
fi
[ -z "$cuda_build" ] && BENCH_CORES=0-$(($(nproc) - 1))

NO_OPS="$BUILD/no_ops/site"
mkdir -p "$NO_OPS" && tar -xzf .whl/mmcv-2.1.0.tar.gz -C "$NO_OPS" --strip-components=1 \
  mmcv-2.1.0/mmcv
cat >"$NO_OPS/mmcv/_ext.py" <<'EOF_STUB'
"""Placeholder for mmcv's compiled ops while they build: importable, and any call raises."""


def __getattr__(name):
    def not_built(*args, **kwargs):
        raise RuntimeError(f'mmcv op {name} is not built in this environment')
    return not_built
EOF_STUB

wanted classification && run classification 200 "$NO_OPS" --what classification --dtype bf16 \
  --batch 256 --train-batch 128 --models ${CLASSIFICATION_MODELS:-dsnet_tiny dsnet_small \
  dsnet_base resnet50 swin_tiny_patch4_window7_224 pvt_v2_b2 convnext_tiny deit_small_patch16_224}
if wanted dense; then
  run dense_bf16 120 "$NO_OPS" --what dense --dtype bf16 --dense-batch 2 \
    --dense-models dsnet_tiny dsnet_small resnet50 swin_tiny pvt_v2_b2
  run dense_fp32 90 "$NO_OPS" --what dense --dtype fp32 --dense-batch 2
fi
wanted resize && run_script resize_probe.py resize 30 "$NO_OPS" --dtype bf16 --batch 256
wanted profile && run profile 60 "$NO_OPS" --what classification --dtype bf16 --batch 256 \
  --train-batch 128 --models dsnet_small --profile --repeats 5
wanted compile && run compile 150 "$NO_OPS" --what classification --dtype bf16 --batch 256 \
  --skip-train --models dsnet_small swin_tiny_patch4_window7_224 --compile
wanted study && run_script kernel_study.py study 170 "$NO_OPS" --dtype bf16 --profile \
  --steps dense training inference inference_deploy
if wanted compile_train; then
  for model in dsnet_small swin_tiny_patch4_window7_224 dsnet_tiny dsnet_base; do
    run "compile_train_${model%%_patch*}" 420 "$NO_OPS" --what classification --dtype bf16 \
      --train-batch 128 --skip-infer --models "$model" --compile --warmup 5 --repeats 20
  done
fi
wanted compile_dense && run compile_dense 420 "$NO_OPS" --what dense --dtype bf16 \
  --dense-batch 2 --dense-models dsnet_small swin_tiny resnet50 --compile
if wanted tests; then
  log "start tests: the attention, resize and layout tests on this machine"
  PYTHONPATH="$NO_OPS:$SITE:$ROOT" timeout 150 "$PY" -m pytest -q -p no:cacheprovider \
    tests/models/layers tests/models/backbones/test_dsnet.py \
    -k "attention or resize or upsample or channels_last" 2>&1 | tail -n 15
  log "end tests"
fi
wanted segmentor && run segmentor 420 "$NO_OPS" --what segmentor --seg-batch 2 \
  --seg-models upernet_dsnet_small upernet_swin_tiny fpn_dsnet_small --compile

if [ -n "$cuda_build" ]; then
  log "waiting for the CUDA build"
  wait "$cuda_build" || exit 1
fi
wanted detector && run detector 150 "$BUILD/cuda/site" --what detector --det-batch 2
wanted compile_detector && run compile_detector 420 "$BUILD/cuda/site" --what detector \
  --det-batch 2 --det-models mask_rcnn_dsnet_small mask_rcnn_swin_tiny mask_rcnn_r50 --compile
wanted study_detector && run_script kernel_study.py study_detector 110 "$BUILD/cuda/site" \
  --steps detector --rounds 3 --variants committed cudnn_benchmark sdpa_efficient sdpa_cudnn \
  depthwise_nchw global_queries_explicit
log "done"
