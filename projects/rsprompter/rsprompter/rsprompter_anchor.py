import copy

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class RSPrompterAnchor(TwoStageDetector):
    """RSPrompter-anchor: a Mask R-CNN-style detector that prompts SAM.

    Chen et al., "RSPrompter: Learning to Prompt for Remote Sensing Instance
    Segmentation based on Visual Foundation Model", TGRS 2024. A frozen SAM
    image encoder (the backbone) gives intermediate block outputs and the
    image embedding; the neck aggregates the block outputs into a feature
    pyramid; an RPN and a box head detect objects on it; the mask branch of
    the RoI head turns each box into SAM prompts and SAM's mask decoder
    predicts its mask from the image embedding.

    Args:
        backbone (dict): A :class:`SAMImageEncoder`.
        neck (dict | list[dict]): Block outputs to a pyramid, usually
            ``[FeatureAggregator, SimpleFeaturePyramid]``.
        rpn_head (dict): An MMDet RPN head (required: proposals always
            come from it).
        roi_head (dict): A :class:`RSPrompterRoIHead`.
        train_cfg (dict): ``rpn``, ``rpn_proposal`` and ``rcnn`` settings.
        test_cfg (dict): ``rpn`` and ``rcnn`` settings.
        data_preprocessor (dict, optional): Must pad every batch to the
            encoder's square input size.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 backbone,
                 neck,
                 rpn_head,
                 roi_head,
                 train_cfg,
                 test_cfg,
                 data_preprocessor=None,
                 init_cfg=None):
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)

    def extract_feat(self, batch_inputs):
        """Encode the images.

        Args:
            batch_inputs (Tensor): (B, 3, S, S) normalised, padded images.

        Returns:
            tuple[tuple[Tensor], Tensor]: The pyramid, (B, C, H_l, W_l) per
            level, and SAM's image embeddings (B, C_sam, S/16, S/16).
        """
        block_outputs, image_embeddings = self.backbone(batch_inputs)
        return self.neck(block_outputs), image_embeddings

    def _forward(self, batch_inputs, batch_data_samples):
        x, image_embeddings = self.extract_feat(batch_inputs)
        rpn_results_list = self.rpn_head.predict(
            x, batch_data_samples, rescale=False)
        return (self.roi_head.forward(x, rpn_results_list, batch_data_samples,
                                      image_embeddings), )

    def loss(self, batch_inputs, batch_data_samples):
        """RPN, box and mask losses of a batch.

        Args:
            batch_inputs (Tensor): (B, 3, S, S).
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (``bboxes``, ``labels``, ``masks``).

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_bbox``,
            ``loss_cls``, ``acc``, ``loss_bbox``, ``loss_mask`` and, with a
            Dice loss, ``loss_dice``.
        """
        x, image_embeddings = self.extract_feat(batch_inputs)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        # The RPN is class-agnostic.
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg)
        losses = {
            f'rpn_{key}' if 'loss' in key and 'rpn' not in key else key: value
            for key, value in rpn_losses.items()
        }
        losses.update(
            self.roi_head.loss(x, rpn_results_list, batch_data_samples,
                               image_embeddings))
        return losses

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        """Detect and segment.

        Returns:
            list[DetDataSample]: ``batch_data_samples`` with
            ``pred_instances`` (``bboxes``, ``scores``, ``labels``,
            boolean ``masks``), in the original image frame when
            ``rescale``.
        """
        x, image_embeddings = self.extract_feat(batch_inputs)
        rpn_results_list = self.rpn_head.predict(
            x, batch_data_samples, rescale=False)
        results_list = self.roi_head.predict(
            x,
            rpn_results_list,
            batch_data_samples,
            image_embeddings,
            rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)
