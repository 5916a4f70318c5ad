from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi


@MODELS.register_module()
class RSPrompterRoIHead(StandardRoIHead):
    """Mask R-CNN's RoI head whose mask branch prompts SAM.

    The box branch (assigner, sampler, RoI extractor, box head and losses)
    is MMDet's. The mask branch pools each positive (training) or detected
    (inference) box from the feature pyramid and hands the pooled feature,
    the box and SAM's image embeddings to a :class:`SAMPromptMaskHead`.
    Every entry point therefore takes ``image_embeddings`` (B, C, S/16,
    S/16) besides the pyramid ``x``.
    """

    def forward(self, x, rpn_results_list, batch_data_samples,
                image_embeddings):
        """Raw outputs, without post-processing (``mode='tensor'``).

        Returns:
            tuple[Tensor]: Class scores and box deltas of all proposals,
            mask logits of the first 100 (as MMDet's head does).
        """
        rois = bbox2roi([results.bboxes for results in rpn_results_list])
        bbox_results = self._bbox_forward(x, rois)
        mask_results = self._mask_forward(x, rois[:100], image_embeddings)
        return (bbox_results['cls_score'], bbox_results['bbox_pred'],
                mask_results['mask_preds'])

    def loss(self, x, rpn_results_list, batch_data_samples, image_embeddings):
        """Box and mask losses.

        Args:
            x (tuple[Tensor]): Feature pyramid, (B, C, H_l, W_l) per level.
            rpn_results_list (list[InstanceData]): Proposals per image.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``.
            image_embeddings (Tensor): (B, C_sam, S/16, S/16).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox``,
            ``loss_mask`` and, with a Dice loss, ``loss_dice``.
        """
        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for index, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[index],
                batch_gt_instances_ignore[index])
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[index],
                    feats=[level[index][None] for level in x]))
        losses = dict(self.bbox_loss(x, sampling_results)['loss_bbox'])
        mask_results = self.mask_loss(x, sampling_results, batch_gt_instances,
                                      image_embeddings)
        losses.update(mask_results['loss_mask'])
        return losses

    def _mask_forward(self, x, rois, image_embeddings):
        """Mask logits of ``rois`` (n, 5): dict with ``mask_preds``
        (n, S/4, S/4) and the pooled ``mask_feats``."""
        mask_feats = self.mask_roi_extractor(
            x[:self.mask_roi_extractor.num_inputs], rois)
        mask_preds = self.mask_head(mask_feats, rois, image_embeddings)
        return dict(mask_preds=mask_preds, mask_feats=mask_feats)

    def mask_loss(self, x, sampling_results, batch_gt_instances,
                  image_embeddings):
        """Mask losses of the positive RoIs.

        Returns:
            dict: ``mask_preds``, ``mask_feats``, ``mask_targets`` and
            ``loss_mask`` (a dict of loss tensors).
        """
        pos_rois = bbox2roi([result.pos_priors for result in sampling_results])
        mask_results = self._mask_forward(x, pos_rois, image_embeddings)
        mask_results.update(
            self.mask_head.loss_and_target(mask_results['mask_preds'],
                                           sampling_results,
                                           batch_gt_instances))
        return mask_results

    def predict(self,
                x,
                rpn_results_list,
                batch_data_samples,
                image_embeddings,
                rescale=False):
        """Detections with masks.

        Returns:
            list[InstanceData]: Per image ``bboxes`` (n, 4), ``scores``,
            ``labels`` and boolean ``masks`` (n, H, W), in the original
            image frame when ``rescale``.
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        # Boxes stay in input pixels for the mask branch; predict_by_feat of
        # the mask head rescales both.
        results_list = self.predict_bbox(
            x,
            batch_img_metas,
            rpn_results_list,
            rcnn_test_cfg=self.test_cfg,
            rescale=False)
        return self.predict_mask(x, batch_img_metas, results_list,
                                 image_embeddings, rescale)

    def predict_mask(self,
                     x,
                     batch_img_metas,
                     results_list,
                     image_embeddings,
                     rescale=False):
        """Add ``masks`` to the detections of each image."""
        rois = bbox2roi([results.bboxes for results in results_list])
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas,
                rois.device,
                task_type='mask',
                instance_results=results_list,
                mask_thr_binary=self.test_cfg.mask_thr_binary)
        mask_preds = self._mask_forward(x, rois,
                                        image_embeddings)['mask_preds']
        mask_preds = mask_preds.split([len(res) for res in results_list])
        return self.mask_head.predict_by_feat(
            mask_preds,
            results_list,
            batch_img_metas,
            rcnn_test_cfg=self.test_cfg,
            rescale=rescale)
