# UnSeg as published: a ViT-B SAM generator at 1024 px (frozen SAM, trainable
# noise head) against a ViT-B SAM-shaped surrogate at 512 px trained from
# scratch.
model = dict(
    type='UnSeg',
    data_preprocessor=dict(type='UnSegDataPreprocessor'),
    generator=dict(
        type='SAMNoiseGenerator',
        arch='vit_b',
        img_size=1024,
        token_slice='official',
        trainable_sam_parts=(),
        sam_checkpoint='checkpoints/sam_vit_b_01ec64.pth'),
    surrogate=dict(
        type='SAMSurrogate',
        arch='vit_b',
        img_size=512,
        encoder_checkpoint=None),
    loss=dict(
        type='PointSampledMaskLoss',
        num_points=112 * 112,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75),
    # Epsilon generalisation: train with small budgets, protect with 8x.
    train_budget=dict(object=1 / 255, background=0.25 / 255),
    label_modification=True,
    generator_prompt=dict(
        prompt_types=('box', 'points', 'mask'), combine=True, num_points=10),
    surrogate_prompt=dict(
        prompt_types=('box', 'points', 'mask'), combine=False, num_points=10))
