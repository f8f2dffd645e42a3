#!/usr/bin/env bash
# Train a detection config with 2 CPU processes (tools/dist_train.sh) for one short epoch on a
# generated COCO-format set of 1344 x 1344 shapes images, resized to the COCO configs' 1333 x 800
# (padded to 1344 x 800), and record the resident memory of the training processes once a second.
# No validation: the set has 3 classes, and a random 80-class head predicts the others.
#
#   bash tools/benchmarks/two_process_memory.sh CONFIG WORK_DIR
#
# Prints the peak of each process and of their sum; WORK_DIR/memory.tsv has the samples.
set -euo pipefail
CONFIG="$1"
WORK_DIR="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA=data/shapes1344
cd "$ROOT"
[ -f "$DATA/annotations/instances_train.json" ] || .venv/bin/python tools/make_shapes_dataset.py \
  --out "$DATA" --num-train 8 --num-val 2 --image-size 1344
mkdir -p "$WORK_DIR"
classes='(circle,triangle,rectangle)'
OMP_NUM_THREADS=1 tools/dist_train.sh "$CONFIG" 2 --work-dir "$WORK_DIR" --cfg-options \
  model.backbone.init_cfg=None train_cfg.max_epochs=1 train_cfg.val_begin=2 \
  train_dataloader.num_workers=0 train_dataloader.persistent_workers=False \
  train_dataloader.dataset.data_root="$DATA/" \
  train_dataloader.dataset.ann_file=annotations/instances_train.json \
  train_dataloader.dataset.data_prefix.img=train/ \
  "train_dataloader.dataset.metainfo.classes=$classes" \
  train_dataloader.dataset.pipeline.2.keep_ratio=False \
  val_dataloader.num_workers=0 val_dataloader.persistent_workers=False \
  val_dataloader.dataset.data_root="$DATA/" \
  val_dataloader.dataset.ann_file=annotations/instances_val.json \
  val_dataloader.dataset.data_prefix.img=val/ \
  "val_dataloader.dataset.metainfo.classes=$classes" \
  val_evaluator.ann_file="$DATA/annotations/instances_val.json" \
  >"$WORK_DIR/train.log" 2>&1 &
launcher=$!
: >"$WORK_DIR/memory.tsv"
while kill -0 "$launcher" 2>/dev/null; do
  # The two training processes: tools/train.py children of torchrun, resident KiB each.
  ps -eo pid=,rss=,args= | awk '/tools\/train.py/ && !/distributed.run/ && !/awk/ {print $1 "\t" $2}' \
    | while read -r pid rss; do printf '%s\t%s\t%s\n' "$(date +%s)" "$pid" "$rss"; done \
    >>"$WORK_DIR/memory.tsv"
  sleep 1
done
wait "$launcher" && status=0 || status=$?
awk -F'\t' '{per[$2] = ($3 > per[$2] ? $3 : per[$2]); sum[$1] += $3}
  END {for (p in per) printf "process %s: peak %.2f GB\n", p, per[p] / 2^20;
       for (t in sum) if (sum[t] > total) total = sum[t]; printf "both: peak %.2f GB\n", total / 2^20}' \
  "$WORK_DIR/memory.tsv"
echo "training exit status: $status (log: $WORK_DIR/train.log)"
exit "$status"
