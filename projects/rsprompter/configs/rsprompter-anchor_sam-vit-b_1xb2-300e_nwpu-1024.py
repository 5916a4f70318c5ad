# RSPrompter-anchor with SAM ViT-B at 1024x1024 on NWPU VHR-10: the paper's
# setting, for a GPU (about 21 GB at batch 2 with AMP). The SAM image encoder
# is frozen; the aggregator, the detector, the prompter and SAM's mask
# decoder train. Download the official SAM ViT-B weights to `sam_checkpoint`
# (or pass --cfg-options with another path):
#   mkdir -p checkpoints && wget -P checkpoints \
#     https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth
# Train from the repository root:
#   PYTHONPATH=. python tools/train.py THIS_CONFIG
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../../../configs/_base_/datasets/nwpu_vhr10_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.rsprompter.rsprompter'], allow_failed_imports=False)

sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
sam_arch = 'vit_b'
img_size = 1024
vit_channels = 768
num_block_outputs = 6  # every other block of 12
channels = 256  # the detector's width = SAM's prompt width
num_classes = 10

model = dict(
    type='RSPrompterAnchor',
    # SAM's pixel statistics; every batch is padded to img_size.
    data_preprocessor=dict(pad_size_divisor=img_size, pad_mask=True),
    backbone=dict(
        _delete_=True,
        type='SAMImageEncoder',
        arch=sam_arch,
        img_size=img_size,
        frozen=True,
        checkpoint=sam_checkpoint),
    neck=[
        dict(
            type='FeatureAggregator',
            in_channels=vit_channels,
            num_inputs=num_block_outputs,
            hidden_channels=32,
            out_channels=channels),
        dict(
            type='SimpleFeaturePyramid',
            in_channels=channels,
            out_channels=channels,
            num_outs=5),
    ],
    roi_head=dict(
        type='RSPrompterRoIHead',
        bbox_head=dict(num_classes=num_classes),
        mask_roi_extractor=dict(roi_layer=dict(output_size=7)),
        mask_head=dict(
            _delete_=True,
            type='SAMPromptMaskHead',
            arch=sam_arch,
            img_size=img_size,
            in_channels=channels,
            roi_feat_size=7,
            num_convs=2,
            fc_channels=1024,
            num_prompts=5,
            checkpoint=sam_checkpoint)))

# Large-scale jitter at 1024 (RSPrompter's augmentation).
image_size = (img_size, img_size)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.1, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 300
train_cfg = dict(
    _delete_=True,
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=3)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        begin=1,
        end=max_epochs,
        T_max=max_epochs - 1,
        by_epoch=True,
        convert_to_iter_based=True),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05))
# The IoU head and the multi-mask outputs of SAM's decoder get no gradient.
find_unused_parameters = True
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=3,
        max_keep_ckpts=3,
        save_best='coco/segm_mAP'))
auto_scale_lr = dict(enable=False, base_batch_size=2)
# Checkpoints that the safe loader reads (and --resume restores).
custom_hooks = [dict(type='mmunseg.SafeResumeHook')]
