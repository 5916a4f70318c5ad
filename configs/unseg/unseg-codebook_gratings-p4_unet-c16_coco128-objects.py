# The period lever the other way: every code's grating at 4 noise pixels
# (15 px on a 480 px CamVid frame, 5.6-11 px once a victim resizes it to
# 0.375-0.75), near the hand-made 12 px code that took a victim to 0.34.
# The recipe's codes alternate 8 and 4 noise pixels by code, and on CamVid
# the 4-pixel classes fell most (Road, Pavement); with one period the codes
# differ by orientation (4) and colour sign vector (4): 16 distinct codes.
_base_ = ['./unseg-codebook_gratings_unet-c16_coco128-objects.py']
model = dict(generator=dict(grating_periods=(4, )))
