# DeepLabV3+ (ResNet-50 V1c, ImageNet-pretrained) on Cityscapes, MMSeg's 80k
# recipe (about 80 mIoU clean in MMSeg's model zoo). GPU-sized.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
# Checkpoints that load with torch.load(weights_only=True) and resume.
custom_hooks = [dict(type='mmunseg.SafeResumeHook')]
