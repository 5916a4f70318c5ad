# A tiny SAM-shaped generator painting object codes, trained from random
# initialisation on coco128_objects against a small UNet surrogate, at the
# protection budget, with victim-like augmentation and DC-free noise (about
# 20 minutes on 2 cores). The ablation beside the code book recipe (which
# does not read SAM's features); applied with class codes
# (tools/protect.py --prompt per-class) to semantic datasets.
_base_ = [
    '../_base_/models/unseg_sam_tiny-codes_unet.py',
    '../_base_/datasets/coco128_objects.py',
    '../_base_/schedules/unseg_3000it.py'
]
# Codes are learnt per object, small ones included; a few pixels of an
# object still carry its code.
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(min_mask_ratio=0.01))
val_dataloader = dict(dataset=dict(min_mask_ratio=0.01))
test_dataloader = val_dataloader
