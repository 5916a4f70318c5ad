"""RSPrompter-anchor (projects/rsprompter) and the Mask R-CNN victim."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmunseg.utils import load_checkpoint_file
from tests.utils import MICRO_ARCH, REPO_ROOT, data_path

PROJECT_CONFIGS = osp.join(REPO_ROOT, 'projects', 'rsprompter', 'configs')
CPU_CONFIG = osp.join(PROJECT_CONFIGS,
                      'rsprompter-anchor_sam-tiny_1xb4-500it_nwpu-320.py')
PAPER_CONFIG = osp.join(PROJECT_CONFIGS,
                        'rsprompter-anchor_sam-vit-b_1xb2-300e_nwpu-1024.py')
MASK_RCNN_CPU = osp.join(REPO_ROOT, 'configs', 'eval',
                         'mask-rcnn_r18-fpn_1xb4-500it_nwpu-320.py')
MASK_RCNN_PAPER = osp.join(REPO_ROOT, 'configs', 'eval',
                           'mask-rcnn_r50-fpn_1xb8-1x_nwpu-1024.py')
SIZE = 128
WIDTH = MICRO_ARCH['prompt_embed_dim']
# (height, width) and xyxy boxes of the objects of two synthetic images.
IMAGES = (
    ((128, 96), [[8, 10, 40, 50], [50, 60, 90, 120]]),
    ((112, 128), [[30, 20, 100, 70]]),
)


@pytest.fixture(autouse=True)
def mmdet_scope():
    import projects.rsprompter.rsprompter  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def micro_model_cfg(checkpoint=None):
    """The CPU config's model with the micro SAM at 128 px."""
    cfg = Config.fromfile(CPU_CONFIG).model
    cfg.data_preprocessor.pad_size_divisor = SIZE
    cfg.backbone.update(
        arch=MICRO_ARCH, img_size=SIZE, frozen=True, checkpoint=checkpoint)
    cfg.neck = [
        dict(
            type='FeatureAggregator',
            in_channels=MICRO_ARCH['embed_dim'],
            num_inputs=1,
            hidden_channels=8,
            out_channels=WIDTH),
        dict(
            type='SimpleFeaturePyramid', in_channels=WIDTH,
            out_channels=WIDTH),
    ]
    cfg.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH)
    roi = cfg.roi_head
    roi.bbox_roi_extractor.out_channels = WIDTH
    roi.mask_roi_extractor.out_channels = WIDTH
    roi.bbox_head.update(in_channels=WIDTH, fc_out_channels=64)
    roi.mask_head.update(
        arch=MICRO_ARCH,
        img_size=SIZE,
        in_channels=WIDTH,
        fc_channels=64,
        num_prompts=2,
        checkpoint=checkpoint)
    cfg.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    return cfg


def build_model(checkpoint=None):
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(micro_model_cfg(checkpoint))
    model.init_weights()
    return model


def synthetic_batch():
    """Two images of different shapes (padded to 128) with 2 and 1
    rectangular objects."""
    inputs, samples = [], []
    for (height, width), boxes in IMAGES:
        inputs.append(
            torch.randint(0, 256, (3, height, width), dtype=torch.uint8))
        masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes):
            mask[y1:y2, x1:x2] = 1
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(2 * height, 2 * width),
                scale_factor=(0.5, 0.5)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor([1, 3][:len(boxes)]),
            masks=BitmapMasks(masks, height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_forward_backward_trains_the_prompter_not_the_encoder():
    model = build_model()
    model.train()
    assert not model.backbone.image_encoder.training
    data = model.data_preprocessor(synthetic_batch(), True)
    assert data['inputs'].shape == (2, 3, SIZE, SIZE)
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                'loss_mask', 'loss_dice'):
        assert key in losses
    loss, log_vars = model.parse_losses(losses)
    assert all(
        np.isfinite(float(value.detach())) for value in log_vars.values())
    loss.backward()

    def grad_norm(module):
        return sum(
            float(p.grad.abs().sum()) for p in module.parameters()
            if p.grad is not None)

    head = model.roi_head.mask_head
    assert grad_norm(head.mlp) > 0 and grad_norm(head.convs) > 0
    assert grad_norm(head.mask_decoder.transformer) > 0
    assert grad_norm(head.mask_decoder.output_upscaling) > 0
    assert grad_norm(model.neck) > 0 and grad_norm(model.rpn_head) > 0
    for frozen in (model.backbone, head.prompt_encoder):
        assert all(not p.requires_grad and p.grad is None
                   for p in frozen.parameters())


def test_mask_targets_follow_the_matched_objects():
    model = build_model()
    data = model.data_preprocessor(synthetic_batch(), True)
    gt = data['data_samples'][0].gt_instances
    result = type('Sampling', (), {})()
    result.pos_assigned_gt_inds = torch.tensor([1, 0])
    result.pos_priors = torch.zeros(2, 4)
    targets = model.roi_head.mask_head.get_targets([result], [gt], SIZE // 4)
    assert targets.shape == (2, SIZE // 4, SIZE // 4)
    # Object 1 covers x 50-90, y 60-120; at a quarter: x 12.5-22.5.
    assert targets[0, 20, 15] == 1 and targets[0, 5, 5] == 0
    assert targets[1, 5, 5] == 1 and targets[1, 20, 15] == 0
    assert 0 < float(targets[0, 20, 12]) < 1  # a partly covered cell


def test_predict_returns_instances_with_masks_in_the_original_frame():
    model = build_model()
    model.eval()
    with torch.no_grad():
        results = model.test_step(synthetic_batch())
    assert len(results) == 2
    for result, ((height, width), _) in zip(results, IMAGES):
        pred = result.pred_instances
        assert 0 < len(pred) <= 10
        assert pred.masks.dtype == torch.bool
        assert pred.masks.shape[1:] == (2 * height, 2 * width)
        assert pred.bboxes.shape == (len(pred), 4)
        assert float(pred.bboxes[:, 2:].max()) <= 2 * max(height, width)


def save_micro_sam(path, seed):
    """A SAM-layout file (image_encoder./prompt_encoder./mask_decoder.)."""
    model = build_model()
    torch.manual_seed(seed)
    state = {}
    for prefix, module in (('image_encoder.', model.backbone.image_encoder),
                           ('prompt_encoder.',
                            model.roi_head.mask_head.prompt_encoder),
                           ('mask_decoder.',
                            model.roi_head.mask_head.mask_decoder)):
        for key, value in module.state_dict().items():
            state[prefix + key] = torch.randn_like(value)
    torch.save(state, path)
    return state


def test_sam_weights_load_safely_and_exactly(tmp_path):
    path = str(tmp_path / 'sam_micro.pth')
    state = save_micro_sam(path, seed=1)
    model = build_model(checkpoint=path)
    loaded = {
        'image_encoder.': model.backbone.image_encoder,
        'prompt_encoder.': model.roi_head.mask_head.prompt_encoder,
        'mask_decoder.': model.roi_head.mask_head.mask_decoder,
    }
    for prefix, module in loaded.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[prefix + key]), prefix + key
    # A wrong SAM size is an error, not a partial load.
    state['image_encoder.pos_embed'] = torch.zeros(1, 4, 4, 7)
    torch.save(state, path)
    with pytest.raises(ValueError, match='mismatched'):
        build_model(checkpoint=path)
    # Pickled objects outside the allow-list are refused.
    torch.save(dict(state_dict=state, extra=object()), path)
    with pytest.raises(ValueError, match='allow-list'):
        build_model(checkpoint=path)


def test_configs_describe_the_paper_and_the_cpu_recipes():
    paper = Config.fromfile(PAPER_CONFIG)
    assert paper.model.backbone.arch == 'vit_b'
    assert paper.model.backbone.img_size == 1024
    assert paper.model.backbone.frozen
    assert paper.model.roi_head.mask_head.checkpoint == \
        paper.model.backbone.checkpoint
    assert paper.model.data_preprocessor.pad_size_divisor == 1024
    assert paper.model.neck[0].num_inputs == 6
    cpu = Config.fromfile(CPU_CONFIG)
    assert cpu.model.backbone.checkpoint is None
    assert cpu.model.roi_head.mask_head.checkpoint is None
    assert cpu.train_cfg.max_iters == 500
    for path in (MASK_RCNN_CPU, MASK_RCNN_PAPER):
        cfg = Config.fromfile(path)
        assert cfg.model.roi_head.bbox_head.num_classes == 10
        assert cfg.model.roi_head.mask_head.num_classes == 10
        assert cfg.val_evaluator.metric == ['bbox', 'segm']
        assert cfg.train_dataloader.dataset.ann_file.endswith(
            'NWPU_instances_train.json')
    assert Config.fromfile(MASK_RCNN_CPU).model.backbone.init_cfg is None
    assert Config.fromfile(
        MASK_RCNN_PAPER).model.backbone.init_cfg.checkpoint == \
        'torchvision://resnet50'


def train_two_iterations(config, work_dir):
    """tools/train.py for 2 iterations of batch 2, validated on 4 images."""
    data_path('nwpu_vhr10')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    options = [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'val_dataloader.dataset.indices=4',
        'model.test_cfg.rcnn.max_per_img=20', 'default_hooks.logger.interval=1'
    ]
    result = subprocess.run(
        [
            sys.executable,
            osp.join(REPO_ROOT, 'tools', 'train.py'), config, '--work-dir',
            str(work_dir), '--cfg-options'
        ] + options,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'coco/segm_mAP' in output and 'coco/bbox_mAP' in output
    return load_checkpoint_file(str(work_dir / 'iter_2.pth'))


def test_cpu_rsprompter_config_trains_on_nwpu(tmp_path):
    checkpoint = train_two_iterations(CPU_CONFIG, tmp_path)
    assert checkpoint['meta']['iter'] == 2
    assert any(
        key.startswith('roi_head.mask_head.mask_decoder.')
        for key in checkpoint['state_dict'])


def test_cpu_mask_rcnn_config_trains_on_nwpu(tmp_path):
    checkpoint = train_two_iterations(MASK_RCNN_CPU, tmp_path)
    assert checkpoint['meta']['iter'] == 2
