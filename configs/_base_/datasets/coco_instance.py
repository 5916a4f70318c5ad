# COCO 2017 instance segmentation (80 classes), MMDet's stock config with its
# data under $MMUNSEG_DATA (default: data/ in the repo, layout
# data/coco/{train2017,val2017,annotations}). Protect it with
#   tools/protect.py THIS_CONFIG GENERATOR --out-dir DIR --prompt per-instance
_base_ = ['mmdet::_base_/datasets/coco_instance.py']
dataset_type = 'mmdet.CocoDataset'
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../data}}/coco/'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
