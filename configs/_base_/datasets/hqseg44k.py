# HQSeg-44K (SAM-HQ's training set, 44,320 images): set MMUNSEG_HQSEG to the
# folder holding DIS5K/, thin_object_detection/ and cascade_psp/.
data_root = '{{$MMUNSEG_HQSEG:data/sam-hq}}'
generator_size = 1024
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(
        type='LargeScaleJitter',
        output_size=generator_size,
        scale_range=(0.1, 2.0)),
    dict(type='PackUnSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='ResizePad', output_size=generator_size),
    dict(type='PackUnSegInputs'),
]


def _subset(img_dir, mask_dir, pipeline):
    return dict(
        type='FolderMaskDataset',
        data_root=data_root,
        img_dir=img_dir,
        mask_dir=mask_dir,
        pipeline=pipeline)


train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _subset('DIS5K/DIS-TR/im', 'DIS5K/DIS-TR/gt', train_pipeline),
            _subset('thin_object_detection/ThinObject5K/images_train',
                    'thin_object_detection/ThinObject5K/masks_train',
                    train_pipeline),
            _subset('cascade_psp/fss_all', 'cascade_psp/fss_all',
                    train_pipeline),
            _subset('cascade_psp/DUTS-TR', 'cascade_psp/DUTS-TR',
                    train_pipeline),
            _subset('cascade_psp/DUTS-TE', 'cascade_psp/DUTS-TE',
                    train_pipeline),
            _subset('cascade_psp/ecssd', 'cascade_psp/ecssd', train_pipeline),
            _subset('cascade_psp/MSRA_10K', 'cascade_psp/MSRA_10K',
                    train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _subset('DIS5K/DIS-VD/im', 'DIS5K/DIS-VD/gt', val_pipeline),
            _subset('thin_object_detection/COIFT/images',
                    'thin_object_detection/COIFT/masks', val_pipeline),
            _subset('thin_object_detection/HRSOD/images',
                    'thin_object_detection/HRSOD/masks_max255', val_pipeline),
            _subset('thin_object_detection/ThinObject5K/images_test',
                    'thin_object_detection/ThinObject5K/masks_test',
                    val_pipeline),
        ]))
val_evaluator = dict(type='SurrogateIoUMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
