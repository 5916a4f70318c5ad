# SegFormer (MiT-B0) trained from scratch on CamVid at half resolution: the
# transformer family of victims at CPU size (no ImageNet weights).
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/camvid.py',
    '../_base_/schedules/victim_adamw_500it.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (176, 240)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(channels=128, num_classes=11, norm_cfg=norm_cfg))
# Transformers from scratch want a lower LR than the conv victims.
optim_wrapper = dict(
    optimizer=dict(lr=6e-4),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.0), norm=dict(decay_mult=0.0))))
