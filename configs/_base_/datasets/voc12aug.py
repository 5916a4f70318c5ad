# Pascal VOC 2012 with the SBD augmented labels (10,582 training images),
# MMSeg's stock config with its data under $MMUNSEG_DATA (default: data/ in
# the repo, the OpenMMLab layout data/VOCdevkit/VOC2012). Protect it with
#   tools/protect.py THIS_CONFIG GENERATOR --out-dir DIR
# (both training datasets, train and aug, are protected and pointed at DIR).
_base_ = ['mmseg::_base_/datasets/pascal_voc12_aug.py']
dataset_type = 'mmseg.PascalVOCDataset'
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../data}}' \
    '/VOCdevkit/VOC2012'
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline={{_base_.train_pipeline}}),
        dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/aug.txt',
            pipeline={{_base_.train_pipeline}}),
    ]))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
