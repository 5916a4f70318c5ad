# Cityscapes (19 classes, 2,975 training images at 2048x1024), MMSeg's stock
# config with its data under $MMUNSEG_DATA (default: data/ in the repo,
# layout data/cityscapes/{leftImg8bit,gtFine}). Protect it with
#   tools/protect.py THIS_CONFIG GENERATOR --out-dir DIR
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
dataset_type = 'mmseg.CityscapesDataset'
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../data}}/cityscapes'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
