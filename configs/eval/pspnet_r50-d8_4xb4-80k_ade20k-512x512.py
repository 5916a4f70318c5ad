# PSPNet (ResNet-50 V1c, ImageNet-pretrained) on ADE20K, MMSeg's 80k recipe
# (about 41 mIoU clean in MMSeg's model zoo). GPU-sized.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    '../_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
# Checkpoints that load with torch.load(weights_only=True) and resume.
custom_hooks = [dict(type='mmunseg.SafeResumeHook')]
