# The chromatic lever: the p4 code book with no luma-only code among the
# first twelve. In the p4 recipe codes 1-3 (CamVid's Sky, Building, Pole,
# and code 1 is also every union prompt's) carry the grey sign vector
# (1, 1, 1), and on every CamVid victim those are the classes the code book
# leaves: Sky 92 and Building 29-41 IoU, while every class with a chromatic
# code falls to 0-19. A luma grating of 8 grey levels competes with natural
# texture (and clips on bright sky); a green-magenta or yellow-blue one
# at 4 noise pixels has no natural counterpart. Here the colours come in the
# order green-magenta, yellow-blue, cyan-red, grey, so CamVid's 11 classes
# take 4 orientations x 3 chromatic axes and grey falls on codes 12-15.
# The colours are mmunseg.models.generators.noise_head.CHROMA_GRATING_COLOURS.
_base_ = ['./unseg-codebook_gratings-p4_unet-c16_coco128-objects.py']
model = dict(
    generator=dict(
        grating_colours=((-1, 1, -1), (1, 1, -1), (-1, 1, 1), (1, 1, 1))))
