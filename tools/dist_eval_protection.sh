#!/usr/bin/env bash
# Distributed protection evaluation on torchrun:
#   tools/dist_eval_protection.sh VICTIM_CONFIG GPUS --protected-root DIR [ARGS...]
# Every run (clean, protected, each seed) trains on all GPUs in turn.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# On machines without CUDA the processes use gloo (one process per "GPU").
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/eval_protection.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
