# The CPU recipe that protects (the demo's default): a code book generator,
# one learnt texture per object code, the same in every image (SAM's
# features are not read: image_features=False), initialised as oriented
# gratings with a colour sign vector per code, and refined by the bilevel
# min-min game against a UNet surrogate trained from scratch on
# coco128_objects, at the protection budget, with victim-like augmentation
# and DC-free noise. About 25 minutes on 2 cores. Applied zero-shot with
# class codes (tools/protect.py --prompt per-class) to semantic datasets,
# mask-only (--prompt union) to binary ones.
_base_ = ['./unseg-codes_sam-tiny_unet-c16_coco128-objects.py']
generator_size = 512
model = dict(
    generator=dict(
        img_size=generator_size,
        texture_period=16,
        image_features=False,
        texture_init='gratings'),
    # The surrogate sees the 512 px view at 128 px, one of its pixels per
    # noise pixel; zooming 1.4-2.8x gives it 1.4-2.8, as victims see
    # CamVid's 480 px frames at 240 px (x0.75-1.5) and Kvasir's 256 px
    # images at 192-320 px.
    augmentation=dict(scale_range=(1.4, 2.8)))
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
# The surrogate needs a few hundred steps to read textures: longer surrogate
# phases than the generator's.
train_cfg = dict(surrogate_iters=50, generator_iters=25)
