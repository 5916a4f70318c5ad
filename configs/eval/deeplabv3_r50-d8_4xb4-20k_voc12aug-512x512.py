# The paper's Table 4 victim at full size: DeepLabV3 (ResNet-50 V1c,
# ImageNet-pretrained) on Pascal VOC 2012 aug, MMSeg's 20k recipe (clean
# about 76-77 mIoU in MMSeg's model zoo; the paper reports 75.1 clean and
# 5.8 on UnSeg-protected data). Needs a GPU and the dataset under
# $MMUNSEG_DATA:
#   tools/eval_protection.py THIS_CONFIG --protected-root DIR
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
    '../_base_/datasets/voc12aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21))
# Checkpoints that load with torch.load(weights_only=True) and resume.
custom_hooks = [dict(type='mmunseg.SafeResumeHook')]
