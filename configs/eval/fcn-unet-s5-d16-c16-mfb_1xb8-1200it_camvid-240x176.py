# The CamVid UNet victim with full median-frequency balancing (SegNet's
# weighting) instead of its square root: with the square root the thin and
# rare classes (Pole, SignSymbol, Fence, Pedestrian, Bicyclist) keep a
# near-uniform softmax on their own pixels after 1200 iterations and are
# never predicted (0 IoU on two seeds). Weights from CamVid train:
# median(f) / f(c), f(c) = pixels of c / labelled pixels of the images that
# contain c. Clean: 48.63 / 48.29 mIoU, 11 / 10 of the 11 classes above 0
# IoU (seeds 0 / 1; benchmarks/results/efficacy_camvid_p4_mfb.json).
_base_ = ['./fcn-unet-s5-d16-c16_1xb8-1200it_camvid-240x176.py']
# Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car,
# Pedestrian, Bicyclist.
class_weight = [
    0.279, 0.202, 4.789, 0.149, 1.0, 0.424, 3.846, 1.98, 0.789, 6.385, 8.819
]
model = dict(
    decode_head=dict(loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(loss_decode=dict(class_weight=class_weight)))
