# The CPU UNet victim on Kvasir-SEG polyps (binary). The paper reports the
# polyp IoU: evaluate with --metric IoU.polyp. Protect Kvasir with the
# medical budget (tools/protect.py --budget medical: 4/255 and 1/255).
_base_ = [
    'mmseg::_base_/models/fcn_unet_s5-d16.py',
    '../_base_/datasets/kvasir_seg.py',
    '../_base_/schedules/victim_adamw_500it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (224, 224)
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=16, channels=16, num_classes=2, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=32, channels=16, num_classes=2, norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))
