# DeepLabV3+ with a ResNet-18 (V1c) trained from scratch on CamVid at half
# resolution: the DeepLab family of the paper's victims at CPU size (no
# pretrained download). BN instead of SyncBN for single-process CPU runs.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/camvid.py',
    '../_base_/schedules/victim_adamw_500it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (176, 240)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        c1_in_channels=64,
        c1_channels=12,
        in_channels=512,
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256, channels=32, num_classes=11, norm_cfg=norm_cfg))
