# The period lever of the code book recipe, measured and found to hurt:
# every grating twice as long (a 32 px texture period on the 128 px noise
# map, so gratings of 16 and 8 noise pixels, 60 and 30 px on a 480 px
# CamVid frame). The CamVid victim went from 0.62 of clean (recipe) to 0.96
# (benchmarks/results/README.md, efficacy_camvid_p32.json): longer periods
# protect less. Kept as the ablation's row.
_base_ = ['./unseg-codebook_gratings_unet-c16_coco128-objects.py']
model = dict(generator=dict(texture_period=32))
