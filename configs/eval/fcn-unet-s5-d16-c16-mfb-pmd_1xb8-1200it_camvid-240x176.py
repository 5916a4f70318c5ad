# The median-frequency CamVid victim with MMSeg's photometric distortion
# (random brightness, contrast, saturation and hue per image) after the
# geometric augmentation, as MMSeg's own CamVid and Cityscapes recipes train.
# Trained on unjittered colours, the small from-scratch UNet tells Road from
# Pavement by colour alone, so a constant colour cast on its training images
# (benchmarks/results/efficacy_camvid_cast_mfb.json) costs it as much as a
# class-aware code; with the jitter a cast of a few grey levels lies inside
# its training distribution, and what is left to measure is the code.
_base_ = ['./fcn-unet-s5-d16-c16-mfb_1xb8-1200it_camvid-240x176.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(240, 176),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(
        type='RandomCrop', crop_size={{_base_.crop_size}}, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
