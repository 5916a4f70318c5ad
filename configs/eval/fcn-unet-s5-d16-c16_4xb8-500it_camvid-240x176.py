# A victim that trains from scratch on a CPU: MMSeg's UNet (s5-d16) with 16
# base channels on CamVid at half resolution, AdamW 1e-3, 500 iterations
# (about 10 minutes on 2 cores; about 30-33 mIoU on clean images, see
# ../shared/docs/efficacy_notes.md). Compare clean and protected training
# data with
#   tools/eval_protection.py THIS_CONFIG --protected-root PROTECTED_DIR
_base_ = [
    'mmseg::_base_/models/fcn_unet_s5-d16.py',
    '../_base_/datasets/camvid.py',
    '../_base_/schedules/victim_adamw_500it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (176, 240)
model = dict(
    # UNet needs sides divisible by 16: pad validation images too.
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=16, channels=16, num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=32, channels=16, num_classes=11, norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))
