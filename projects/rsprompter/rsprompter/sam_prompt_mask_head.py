import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import RoIAlign
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from segment_anything.modeling import MaskDecoder

from mmunseg.models.sam.builder import (PATCH_SIZE, build_prompt_encoder,
                                        build_two_way_transformer,
                                        resolve_arch)
from mmunseg.models.weights import load_parts, read_state_dict

# Masks pasted to the image per chunk of instances, to bound memory.
PASTE_CHUNK = 16


@MODELS.register_module()
class SAMPromptMaskHead(BaseModule):
    """RSPrompter's mask branch: RoI features -> SAM prompts -> SAM masks.

    Each RoI's pooled feature, plus SAM's positional encoding of the same
    region (RoI-aligned from the dense positional grid SAM gives its image
    embedding), goes through convolutions and an MLP to ``num_prompts``
    sparse prompt embeddings. SAM's mask decoder (trainable) reads them with
    the image embedding of the RoI's image and predicts the instance mask in
    the frame of the padded input, at a quarter of its resolution. SAM's
    prompt encoder stays frozen: it only provides the positional grid and
    the "no mask" dense embedding.

    Args:
        arch (str | dict): SAM size, see ``resolve_arch``.
        img_size (int): Square side of the padded input.
        in_channels (int): Width of the RoI features; must equal SAM's
            prompt width, since the positional encoding is added to them.
        roi_feat_size (int): Side of the RoI features.
        num_convs (int): 3x3 convolutions before the MLP.
        fc_channels (int): Hidden width of the MLP.
        num_prompts (int): Sparse prompt embeddings per RoI.
        loss_mask (dict): Per-pixel loss on mask logits (BCE).
        loss_dice (dict, optional): Per-mask loss (Dice).
        checkpoint (str, optional): SAM file whose ``prompt_encoder.*`` and
            ``mask_decoder.*`` weights :meth:`init_weights` loads.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 arch='vit_b',
                 img_size=1024,
                 in_channels=256,
                 roi_feat_size=7,
                 num_convs=2,
                 fc_channels=1024,
                 num_prompts=5,
                 loss_mask=dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 loss_dice=dict(
                     type='DiceLoss',
                     use_sigmoid=True,
                     activate=True,
                     loss_weight=1.0),
                 checkpoint=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch)
        self.prompt_dim = arch['prompt_embed_dim']
        if in_channels != self.prompt_dim:
            raise ValueError(
                f'in_channels ({in_channels}) must equal the SAM prompt '
                f'width ({self.prompt_dim}): the positional encoding is '
                'added to the RoI features')
        self.img_size = img_size
        self.num_prompts = num_prompts
        self.checkpoint = checkpoint
        self.prompt_encoder = build_prompt_encoder(arch, img_size)
        self.prompt_encoder.requires_grad_(False)
        self.mask_decoder = MaskDecoder(
            transformer_dim=self.prompt_dim,
            transformer=build_two_way_transformer(arch),
            num_multimask_outputs=3)
        self.roi_pe = RoIAlign(
            roi_feat_size, spatial_scale=1 / PATCH_SIZE, sampling_ratio=0)
        self.convs = nn.Sequential(*[
            ConvModule(in_channels, in_channels, 3, padding=1)
            for _ in range(num_convs)
        ])
        self.mlp = nn.Sequential(
            nn.Linear(in_channels * roi_feat_size**2, fc_channels),
            nn.ReLU(inplace=True),
            nn.Linear(fc_channels, num_prompts * self.prompt_dim))
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice) if loss_dice else None

    def init_weights(self):
        super().init_weights()
        if self.checkpoint is not None:
            load_parts(
                {
                    'prompt_encoder.': self.prompt_encoder,
                    'mask_decoder.': self.mask_decoder
                }, read_state_dict(self.checkpoint), self.checkpoint)

    def prompts(self, roi_feats, rois, image_pe):
        """Sparse prompt embeddings of the RoIs.

        Args:
            roi_feats (Tensor): (n, C, k, k) pooled features.
            rois (Tensor): (n, 5) batch index and xyxy box in input pixels.
            image_pe (Tensor): SAM's positional grid (1, C, S/16, S/16).

        Returns:
            Tensor: (n, num_prompts, C).
        """
        # One positional grid serves every image of the batch.
        pe_rois = torch.cat([rois.new_zeros(len(rois), 1), rois[:, 1:]], 1)
        x = roi_feats + self.roi_pe(image_pe.to(roi_feats.dtype), pe_rois)
        x = self.convs(x)
        return self.mlp(x.flatten(1)).view(-1, self.num_prompts,
                                           self.prompt_dim)

    def forward(self, roi_feats, rois, image_embeddings):
        """Predict one mask per RoI.

        Args:
            roi_feats (Tensor): (n, C, k, k) pooled features.
            rois (Tensor): (n, 5) batch index and xyxy box in input pixels.
            image_embeddings (Tensor): SAM embeddings (B, C, S/16, S/16).

        Returns:
            Tensor: Mask logits (n, S/4, S/4) over the padded input.
        """
        image_pe = self.prompt_encoder.get_dense_pe()
        prompts = self.prompts(roi_feats, rois, image_pe)
        dense = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        size = 4 * image_embeddings.shape[-1]
        # fp32 logits, also under AMP: the losses and the paste need them.
        masks = prompts.new_zeros(len(rois), size, size, dtype=torch.float32)
        for index in range(len(image_embeddings)):
            mine = rois[:, 0] == index
            if not mine.any():
                continue
            # SAM's decoder pairs one image with all of its prompts.
            logits, _ = self.mask_decoder(
                image_embeddings=image_embeddings[index:index + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=prompts[mine],
                dense_prompt_embeddings=dense,
                multimask_output=False)
            masks[mine] = logits[:, 0].float()
        return masks

    def get_targets(self, sampling_results, batch_gt_instances, size):
        """Full-image masks of the ground truth matched to positive RoIs.

        Args:
            sampling_results (list[SamplingResult]): Per image.
            batch_gt_instances (list[InstanceData]): Per image, with
                ``masks`` in the frame of the (padded) input.
            size (int): Side of the predicted masks.

        Returns:
            Tensor: (n_pos, size, size) in [0, 1], the share of each cell
            covered by the object.
        """
        targets = []
        for result, gt in zip(sampling_results, batch_gt_instances):
            indices = result.pos_assigned_gt_inds.cpu().numpy()
            if len(indices) == 0:
                continue
            masks = gt.masks[indices].to_tensor(
                dtype=torch.float32, device=result.pos_priors.device)
            height, width = masks.shape[-2:]
            if height > self.img_size or width > self.img_size:
                raise ValueError(f'gt masks {height}x{width} exceed the '
                                 f'{self.img_size} px input')
            masks = F.pad(
                masks, (0, self.img_size - width, 0, self.img_size - height))
            targets.append(
                F.interpolate(masks[:, None], size=size, mode='area')[:, 0])
        if not targets:
            return torch.zeros(0, size, size)
        return torch.cat(targets)

    def loss_and_target(self, mask_preds, sampling_results,
                        batch_gt_instances):
        """Mask losses of the positive RoIs.

        Args:
            mask_preds (Tensor): (n_pos, S/4, S/4) logits.
            sampling_results (list[SamplingResult]): Per image.
            batch_gt_instances (list[InstanceData]): Per image.

        Returns:
            dict: ``loss_mask`` (a dict of loss tensors) and
            ``mask_targets`` (n_pos, S/4, S/4).
        """
        targets = self.get_targets(sampling_results, batch_gt_instances,
                                   mask_preds.shape[-1])
        targets = targets.to(mask_preds)
        losses = dict()
        if len(mask_preds) == 0:
            # No positive RoI: zeros keep the logged loss keys stable.
            losses['loss_mask'] = mask_preds.sum() * 0
            if self.loss_dice is not None:
                losses['loss_dice'] = mask_preds.sum() * 0
        else:
            losses['loss_mask'] = self.loss_mask(
                mask_preds.flatten(1), targets.flatten(1))
            if self.loss_dice is not None:
                losses['loss_dice'] = self.loss_dice(mask_preds, targets)
        return dict(loss_mask=losses, mask_targets=targets)

    def predict_by_feat(self,
                        mask_preds,
                        results_list,
                        batch_img_metas,
                        rcnn_test_cfg,
                        rescale=False):
        """Paste the predicted masks into each image.

        Args:
            mask_preds (Sequence[Tensor]): Per image, (n_i, S/4, S/4)
                logits over the padded input.
            results_list (list[InstanceData]): Detections per image
                (``bboxes`` in input pixels, ``labels``, ``scores``).
            batch_img_metas (list[dict]): ``img_shape``, ``ori_shape`` and
                ``scale_factor`` per image.
            rcnn_test_cfg (ConfigDict): With ``mask_thr_binary``.
            rescale (bool): Return boxes and masks in the original image
                frame (else in the resized input's).

        Returns:
            list[InstanceData]: ``results_list`` with boolean ``masks``
            (n_i, H, W); boxes rescaled in place when ``rescale``.
        """
        threshold = rcnn_test_cfg.mask_thr_binary
        for index, (preds, results, meta) in enumerate(
                zip(mask_preds, results_list, batch_img_metas)):
            if len(results) == 0:
                results_list[index] = empty_instances(
                    [meta],
                    preds.device,
                    task_type='mask',
                    instance_results=[results],
                    mask_thr_binary=threshold)[0]
                continue
            height, width = meta['img_shape'][:2]
            out_size = (height, width)
            if rescale:
                out_size = tuple(meta['ori_shape'][:2])
                scale = results.bboxes.new_tensor(meta['scale_factor'])
                results.bboxes /= scale.repeat(2)
            masks = []
            for chunk in preds.split(PASTE_CHUNK):
                logits = F.interpolate(
                    chunk[:, None],
                    size=(self.img_size, self.img_size),
                    mode='bilinear',
                    align_corners=False)[..., :height, :width]
                if out_size != (height, width):
                    logits = F.interpolate(
                        logits,
                        size=out_size,
                        mode='bilinear',
                        align_corners=False)
                masks.append(logits[:, 0].sigmoid() >= threshold)
            results.masks = torch.cat(masks)
        return results_list
