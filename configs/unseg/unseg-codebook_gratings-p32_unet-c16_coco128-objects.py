# The code book recipe with every grating twice as long: a 32 px texture
# period at 512 px, so the gratings' periods (16 and 8 px) reach a victim
# that sees CamVid at half size as about 7.5 and 3.8 px, close to the
# hand-made class code's 6 px (shared efficacy notes), instead of 3.8 and
# 1.9 px, which a victim's down-sampling blurs or aliases.
_base_ = ['./unseg-codebook_gratings_unet-c16_coco128-objects.py']
model = dict(generator=dict(texture_period=32))
