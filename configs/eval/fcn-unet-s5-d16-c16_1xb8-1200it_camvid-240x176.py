# A CamVid victim: MMSeg's UNet (s5-d16, 16 base channels) from scratch at
# half resolution, class-weighted cross-entropy (square root of
# median-frequency balancing on CamVid train), 1200 iterations of AdamW
# (about 25 minutes on 2 cores). It learns only 6 of the 11 classes (41.37 /
# 45.27 mIoU on seeds 0 / 1; Pole, SignSymbol, Fence, Pedestrian and
# Bicyclist at 0 IoU): the -mfb variant, full weights, learns 10-11.
# Compare clean and protected training data with
#   tools/eval_protection.py THIS_CONFIG --protected-root PROTECTED_DIR
_base_ = [
    'mmseg::_base_/models/fcn_unet_s5-d16.py',
    '../_base_/datasets/camvid.py',
    '../_base_/schedules/victim_adamw_1200it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (176, 240)
# Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car,
# Pedestrian, Bicyclist.
class_weight = [
    0.53, 0.45, 2.19, 0.39, 1.0, 0.65, 1.96, 1.40, 0.89, 2.52, 2.98
]
model = dict(
    # UNet needs sides divisible by 16: pad validation images too.
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=16,
        channels=16,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True,
            type='mmunseg.WeightedCrossEntropyLoss',
            class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=32,
        channels=16,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True,
            type='mmunseg.WeightedCrossEntropyLoss',
            class_weight=class_weight,
            loss_weight=0.4)),
    test_cfg=dict(mode='whole'))
