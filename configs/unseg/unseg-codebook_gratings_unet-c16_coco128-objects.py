# The CPU recipe that protects (the demo's default): a code book generator,
# one learnt texture per object code, the same in every image, initialised
# as oriented gratings with a colour sign vector per code, and refined by
# the bilevel min-min game against a UNet surrogate trained from scratch on
# coco128_objects, at the protection budget, with victim-like augmentation
# and DC-free noise. About 26 minutes on 2 cores. Applied zero-shot with
# class codes (tools/protect.py --prompt per-class) to semantic datasets,
# mask-only (--prompt union) to binary ones.
_base_ = [
    '../_base_/models/unseg_codebook_unet.py',
    '../_base_/datasets/coco128_objects.py',
    '../_base_/schedules/unseg_3000it.py'
]
generator_size = 512
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(
        type='LargeScaleJitter',
        output_size=generator_size,
        scale_range=(0.5, 1.5)),
    dict(type='PackUnSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='ResizePad', output_size=generator_size),
    dict(type='PackUnSegInputs'),
]
# Codes are learnt per object, small ones included.
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(min_mask_ratio=0.01, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(min_mask_ratio=0.01, pipeline=val_pipeline))
test_dataloader = val_dataloader
# The surrogate needs a few hundred steps to read textures: longer surrogate
# phases than the generator's.
train_cfg = dict(surrogate_iters=50, generator_iters=25)
