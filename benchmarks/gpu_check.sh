#!/usr/bin/env bash
# The GPU benchmarks in one run, on one GPU, in under 8 minutes:
#   1. generation speed of a ViT-B generator (generation_speed.py), fp32 and
#      bf16, batch 1, 8 and 32, with peak memory; per-image EM
#      (error-minimising noise, --em-images) in the fp32 batch-1 run;
#   2. one bilevel train step at ViT-B sizes (train_step.py);
#   3. the protect pipeline end to end (protect_throughput.py).
# Every JSON goes to benchmarks/results/ (or --out-dir), named after the
# arch and device:
#   generation_speed_vit_b_cuda_{fp32,bf16}_b{1,8,32}.json
#   train_step_vit_b_cuda.json   protect_throughput_vit_b_cuda.json
#
#   bash benchmarks/gpu_check.sh                 # on a GPU machine
#   bash benchmarks/gpu_check.sh --smoke         # the same steps, reduced,
#                                                # on the CPU (< 3 minutes)
#
# --smoke runs each step on the CPU with the tiny arch, 2 images, batch 1-2
# and 1 step, into a temporary folder (removed at the end) unless --out-dir
# is given. PYTHON chooses the interpreter (default: python). Any failing
# step stops the script with a non-zero status.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python}"
SMOKE=0
OUT_DIR=""

usage() {
    echo "usage: bash benchmarks/gpu_check.sh [--smoke] [--out-dir DIR]" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) SMOKE=1; shift ;;
        --out-dir) [[ $# -ge 2 ]] || usage; OUT_DIR="$2"; shift 2 ;;
        *) usage ;;
    esac
done

if [[ $SMOKE -eq 1 ]]; then
    DEVICE=cpu
    ARCH=tiny
    BATCHES=(1 2)
    # Generation speed and EM: 2 images, one timed pass, EM of 1 step.
    GEN_ARGS=(--images 2 --repeats 1 --threads 1)
    EM_ARGS=(--em-images 1 --em-options rounds=1 train_steps=1 steps=1)
    # The tiny CPU recipe's config, one step of each phase.
    TRAIN_ARGS=(--batch-size 1 --warmup 1 --steps 1 --no-contrast
                --threads 1)
    PIPELINE_ARGS=(--arch tiny --images 2 --chunk 2 --batch-size 1
                   --workers 1 2 --threads 1)
    if [[ -z "$OUT_DIR" ]]; then
        OUT_DIR="$(mktemp -d)"
        trap 'rm -rf "$OUT_DIR"' EXIT
    fi
else
    DEVICE=cuda
    ARCH=vit_b
    BATCHES=(1 8 32)
    # The same 32 images at every batch size.
    GEN_ARGS=(--arch vit_b --images 32 --repeats 3)
    EM_ARGS=(--em-images 2)
    TRAIN_ARGS=(--arch vit_b --steps 10)
    PIPELINE_ARGS=(--arch vit_b --precision bf16 --images 120 --chunk 40
                   --workers 1 2 4)
    OUT_DIR="${OUT_DIR:-$REPO/benchmarks/results}"
fi
mkdir -p "$OUT_DIR"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"

started=$SECONDS
step() {
    echo "== $* ($((SECONDS - started)) s)"
}

for precision in fp32 bf16; do
    for batch in "${BATCHES[@]}"; do
        extra=(--em-images 0)
        if [[ $precision == fp32 && $batch == "${BATCHES[0]}" ]]; then
            extra=("${EM_ARGS[@]}")
        fi
        out="$OUT_DIR/generation_speed_${ARCH}_${DEVICE}_${precision}_b${batch}.json"
        step "generation speed, $ARCH, $precision, batch $batch"
        "$PYTHON" benchmarks/generation_speed.py --device "$DEVICE" \
            --precision "$precision" --batch-size "$batch" \
            "${GEN_ARGS[@]}" "${extra[@]}" --out "$out"
    done
done

step "bilevel train step, $ARCH"
"$PYTHON" benchmarks/train_step.py --device "$DEVICE" "${TRAIN_ARGS[@]}" \
    --out "$OUT_DIR/train_step_${ARCH}_${DEVICE}.json"

step "protect pipeline end to end, $ARCH"
"$PYTHON" benchmarks/protect_throughput.py --device "$DEVICE" \
    "${PIPELINE_ARGS[@]}" \
    --out "$OUT_DIR/protect_throughput_${ARCH}_${DEVICE}.json"

step "done: JSON in $OUT_DIR"
