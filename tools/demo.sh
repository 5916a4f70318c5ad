#!/usr/bin/env bash
# The embedded demo, CPU-sized (about 10 minutes on 2 cores):
#   1. train the tiny SAM-shaped UnSeg generator on coco128_objects
#      (reused when work_dirs/demo/generator already holds it);
#   2. protect a CamVid subset with it (8/255 on objects, 2/255 elsewhere);
#   3. print the summary and write side-by-side panels.
# PYTHON picks the interpreter; DEMO_EPOCHS and DEMO_IMAGES size the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${DEMO_WORK_DIR:-work_dirs/demo}
EPOCHS=${DEMO_EPOCHS:-24}
IMAGES=${DEMO_IMAGES:-40}
export PYTHONUNBUFFERED=1

checkpoint="$WORK/generator/epoch_$EPOCHS.pth"
if [ -f "$checkpoint" ]; then
  echo "[demo] reusing the generator $checkpoint"
else
  echo "[demo] training the tiny generator for $EPOCHS epochs"
  "$PYTHON" tools/train.py configs/unseg/unseg_sam_tiny_coco128-objects.py \
    --work-dir "$WORK/generator" \
    --cfg-options train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS" \
    default_hooks.checkpoint.interval="$EPOCHS"
fi

echo "[demo] protecting $IMAGES CamVid training images"
"$PYTHON" tools/protect.py configs/_base_/datasets/camvid.py "$checkpoint" \
  --out-dir "$WORK/camvid_protected" --limit "$IMAGES" --resume --vis 4

echo "[demo] panels (clean | protected | amplified noise | object mask):"
ls "$WORK"/camvid_protected/vis/*.png
