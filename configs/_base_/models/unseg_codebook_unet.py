# A code book generator against a small MMSeg UNet surrogate: one learnt
# texture per object code, the same in every image (SAM's features are not
# read: image_features=False), initialised as oriented gratings with a
# colour sign vector per code, at 512 px (a 16 px texture period).
_base_ = ['./unseg_sam_tiny-codes_unet.py']
model = dict(
    generator=dict(
        img_size=512,
        texture_period=16,
        image_features=False,
        texture_init='gratings'),
    # The surrogate sees the 512 px view at 128 px, one of its pixels per
    # noise pixel; zooming 1.4-2.8x gives it 1.4-2.8, as victims see
    # CamVid's 480 px frames at 240 px (x0.75-1.5) and Kvasir's 256 px
    # images at 192-320 px.
    augmentation=dict(scale_range=(1.4, 2.8)))
