# A tiny SAM-shaped generator that paints object codes, against a small MMSeg
# UNet surrogate (a CNN trained from scratch, like the victims).
#   - 16 object codes (code 0 paints the background): each object gets a
#     random code, so only the noise tells the surrogate which; protection
#     gives each class of a semantic dataset its own code.
#   - a learned 8x8 texture bank gives the codes image-independent patterns;
#     dc_free removes the noise's mean per channel and region (no casts).
#   - trained at the protection budget, with victim-like augmentation
#     (rescale, crop, flip, grey, blur) between the noise and the surrogate.
_base_ = ['./unseg_sam_tiny.py']
num_codes = 16
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    generator=dict(
        token_slice='fixed',
        num_codes=num_codes,
        texture_period=8,
        dc_free=True),
    surrogate=dict(
        _delete_=True,
        type='MMSegSurrogate',
        img_size=128,
        segmentor=dict(
            type='mmseg.EncoderDecoder',
            backbone=dict(
                type='UNet',
                in_channels=3,
                base_channels=16,
                num_stages=4,
                strides=(1, 1, 1, 1),
                enc_num_convs=(2, 2, 2, 2),
                dec_num_convs=(2, 2, 2),
                downsamples=(True, True, True),
                enc_dilations=(1, 1, 1, 1),
                dec_dilations=(1, 1, 1),
                norm_cfg=norm_cfg,
                upsample_cfg=dict(type='InterpConv')),
            decode_head=dict(
                type='FCNHead',
                in_channels=16,
                in_index=3,
                channels=16,
                num_convs=1,
                concat_input=False,
                dropout_ratio=0.,
                num_classes=1 + num_codes,
                norm_cfg=norm_cfg,
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(),
            test_cfg=dict(mode='whole'))),
    loss=dict(_delete_=True, type='PixelCrossEntropyLoss'),
    train_budget=dict(object=8 / 255, background=2 / 255),
    label_modification=False,
    # The surrogate sees the generator's view at half size, 2 of its pixels
    # per noise pixel; zooming 1.4-2.8x gives it 3-6, as victims see 480 px
    # CamVid frames at 240 px or Kvasir's 256 px images at 224-320 px (a
    # UNet barely learns patterns of 2 px).
    augmentation=dict(
        type='CraftingAugmentation',
        scale_range=(1.4, 2.8),
        flip_prob=0.5,
        grayscale_prob=0.25,
        blur_prob=0.25),
    generator_prompt=dict(prompt_types=('mask', ), combine=False),
    surrogate_prompt=dict(prompt_types=('mask', ), combine=False),
    val_prompt=dict(prompt_types=('mask', ), boundary_noise=False))
