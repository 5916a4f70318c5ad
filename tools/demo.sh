#!/usr/bin/env bash
# The embedded demo, CPU-sized (about 30 minutes on 2 cores):
#   1. train the protecting CPU recipe (a code book painting one 4-pixel
#      grating per class, DC-free, against a UNet surrogate with victim-like
#      augmentation) on coco128_objects; reused when work_dirs/demo/<config
#      name> already holds it;
#   2. protect a CamVid subset with it zero-shot, one code per class
#      (8/255 on labelled pixels, 2/255 on void);
#   3. print the summary and write side-by-side panels.
# PYTHON picks the interpreter; DEMO_ITERS and DEMO_IMAGES size the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
WORK=${DEMO_WORK_DIR:-work_dirs/demo}
ITERS=${DEMO_ITERS:-3000}
IMAGES=${DEMO_IMAGES:-40}
CONFIG=configs/unseg/unseg-codebook_gratings-p4_unet-c16_coco128-objects.py
# One folder per recipe: a generator trained by an earlier recipe is never
# taken for this one's.
GENERATOR="$WORK/$(basename "$CONFIG" .py)"
export PYTHONUNBUFFERED=1

checkpoint="$GENERATOR/iter_$ITERS.pth"
if [ -f "$checkpoint" ]; then
  echo "[demo] reusing the generator $checkpoint"
else
  echo "[demo] training the generator for $ITERS iterations ($CONFIG)"
  "$PYTHON" tools/train.py "$CONFIG" --work-dir "$GENERATOR" \
    --cfg-options train_cfg.max_iters="$ITERS" train_cfg.val_interval="$ITERS" \
    default_hooks.checkpoint.interval="$ITERS"
fi

echo "[demo] protecting $IMAGES CamVid training images, one code per class"
"$PYTHON" tools/protect.py configs/_base_/datasets/camvid.py "$checkpoint" \
  --out-dir "$WORK/camvid_protected" --prompt per-class --limit "$IMAGES" \
  --resume --vis 4

echo "[demo] noise panels of the generator: $GENERATOR/noise_panels/"
echo "[demo] panels (clean | protected | amplified noise | object mask):"
ls "$WORK"/camvid_protected/vis/*.png
