# The Kvasir-SEG victim that finds polyps: MMSeg's UNet (s5-d16, 16 base
# channels) from scratch, class-weighted cross-entropy (polyps cover 13% of
# the pixels; unweighted, the 500-iteration victim predicted background
# everywhere), 1200 iterations of AdamW (about 25 minutes on 2 cores).
# The paper reports the polyp IoU (--metric IoU.polyp); protect Kvasir with
# the medical budget (tools/protect.py --budget medical: 4/255 and 1/255).
_base_ = [
    'mmseg::_base_/models/fcn_unet_s5-d16.py',
    '../_base_/datasets/kvasir_seg.py',
    '../_base_/schedules/victim_adamw_1200it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (224, 224)
class_weight = [0.6, 1.8]  # background, polyp
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=16,
        channels=16,
        num_classes=2,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True,
            type='mmunseg.WeightedCrossEntropyLoss',
            class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=32,
        channels=16,
        num_classes=2,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True,
            type='mmunseg.WeightedCrossEntropyLoss',
            class_weight=class_weight,
            loss_weight=0.4)),
    test_cfg=dict(mode='whole'))
