#!/usr/bin/env bash
# Protect a dataset with several processes (torchrun); images are sharded
# over ranks with no duplicates and no gaps:
#   tools/dist_protect.sh DATASET_CONFIG GENERATOR_CKPT GPUS --out-dir DIR [ARGS...]
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29510}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/protect.py" \
    "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
