# UnSeg (NeurIPS 2024) as published: SAM ViT-B generator at 1024 px, ViT-B
# surrogate at 512 px from scratch, HQSeg-44K, 8 GPUs x 4 images, 27 epochs.
#   tools/dist_train.sh configs/unseg/unseg_sam_b_hqseg.py 8
# Needs checkpoints/sam_vit_b_01ec64.pth (the official SAM file) and
# MMUNSEG_HQSEG pointing at HQSeg-44K.
_base_ = [
    '../_base_/models/unseg_sam_vit_b.py', '../_base_/datasets/hqseg44k.py',
    '../_base_/schedules/unseg_27e.py', '../_base_/default_runtime.py'
]
