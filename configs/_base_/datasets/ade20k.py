# ADE20K (150 classes, 20,210 training images), MMSeg's stock config with
# its data under $MMUNSEG_DATA (default: data/ in the repo, layout
# data/ade/ADEChallengeData2016/{images,annotations}). Protect it with
#   tools/protect.py THIS_CONFIG GENERATOR --out-dir DIR
_base_ = ['mmseg::_base_/datasets/ade20k.py']
dataset_type = 'mmseg.ADE20KDataset'
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../data}}' \
    '/ade/ADEChallengeData2016'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
