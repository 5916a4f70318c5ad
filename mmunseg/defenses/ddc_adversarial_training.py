"""DDC-AT: dynamic divide-and-conquer adversarial training (Xu, Zhao, Jia,
ICCV 2021), a segmentation-specific defense, for any MMSeg encoder-decoder."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.utils import add_prefix

from mmunseg.registry import MODELS
from .pgd_adversarial_training import PGDAdversarialTraining


def branch(head, out_channels):
    """A head on the decode head's features: 3 x 3 conv, norm, ReLU,
    dropout, 1 x 1 classifier (DDC-AT's ``cls2`` / ``mask1``)."""
    channels = head.conv_seg.in_channels
    return nn.Sequential(
        ConvModule(
            channels,
            channels,
            3,
            padding=1,
            conv_cfg=head.conv_cfg,
            norm_cfg=head.norm_cfg,
            act_cfg=head.act_cfg), nn.Dropout2d(head.dropout_ratio),
        nn.Conv2d(channels, out_channels, 1))


def head_features(head, inputs):
    """The decode head's output before its classifier ``cls_seg``.

    Every MMSeg decode head ends its forward with ``self.cls_seg(output)``;
    shadowing that method on the instance for one call returns ``output``
    (whatever the head: FCN, PSP, ASPP, DeepLabV3+, UPer, SegFormer, ...).
    """
    head.cls_seg = lambda features: features
    try:
        return head(inputs)
    finally:
        del head.cls_seg


@MODELS.register_module()
class DDCAdversarialTraining(PGDAdversarialTraining):
    """Train a segmentor with DDC-AT; test it as it is.

    As the reference (``tool_train/train_ddcat_psp.py``, ``PSPNet_DDCAT``):
    two branches are added on the decode head's features, a second
    classifier and a 2-way "mask" that routes each pixel to the segmentor's
    own classifier (0) or the second one (1). Each training batch is
    attacked with BIM (the PGD of the parent class: no random start, on the
    decode head's cross-entropy, eval mode, pixel space); pixels whose
    routed prediction the attack flips are "non-robust". The first half of
    the batch is trained clean with the mask target 1 on its non-robust
    pixels, the second half adversarial with target 0; the loss is the
    cross-entropy of the routed logits, plus the mask's cross-entropy, plus
    the auxiliary heads' losses at their configured weights. Only the
    segmentor's classifier is used at test time, so evaluation is the
    segmentor's own. A batch of one image is trained adversarially.

    Differences from the reference: the second classifier and the mask sit
    on the decode head's features (after its own bottleneck) instead of
    beside it, and any MMSeg encoder-decoder works, not only PSPNet and
    DeepLabV3.

    Cost: ``steps`` attack passes (forward and backward), 2 routed
    forward passes, and the training pass per iteration.

    Args:
        segmentor (dict | EncoderDecoder): The victim with one decode head.
        epsilon (float): L-inf radius in grey levels (the reference's 0.03
            of the [0, 1] range).
        step_size (float): Attack step in grey levels (epsilon / 3).
        steps (int): BIM steps (the reference's 3).
        random_start (bool): Start BIM at a random point (the reference
            does not).
        data_preprocessor (dict, optional): The segmentor's, if its config
            has none.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor,
                 epsilon=0.03 * 255,
                 step_size=0.01 * 255,
                 steps=3,
                 random_start=False,
                 data_preprocessor=None,
                 init_cfg=None):
        super().__init__(
            segmentor,
            epsilon=epsilon,
            step_size=step_size,
            steps=steps,
            random_start=random_start,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        head = getattr(self.segmentor, 'decode_head', None)
        if not hasattr(head, 'cls_seg'):
            raise ValueError('DDC-AT needs an encoder-decoder segmentor with '
                             f'one decode head, got {type(head).__name__}')
        self.second_classifier = branch(head, head.out_channels)
        self.router = branch(head, 2)

    def attack_loss(self, inputs, data_samples):
        """The decode head's loss (the reference attacks its main output)."""
        head = self.segmentor.decode_head
        losses = head.loss_by_feat(
            head(self.segmentor.extract_feat(inputs)), data_samples)
        loss, _ = self.parse_losses(losses)
        return loss

    def branches(self, inputs):
        """Backbone features and the three branches' logits."""
        features = self.segmentor.extract_feat(inputs)
        shared = head_features(self.segmentor.decode_head, features)
        return (features, self.segmentor.decode_head.cls_seg(shared),
                self.second_classifier(shared), self.router(shared))

    def routed(self, first, second, router):
        """Each pixel's logits from the branch the router picks."""
        choice = router.argmax(1, keepdim=True).to(first.dtype)
        return first + choice * (second - first)

    @torch.no_grad()
    def routed_prediction(self, inputs):
        """(B, H, W) routed class of each input pixel, in eval mode."""
        _, first, second, router = self.branches(inputs)
        logits = F.interpolate(
            self.routed(first, second, router),
            inputs.shape[-2:],
            mode='bilinear',
            align_corners=self.segmentor.align_corners)
        return logits.argmax(1)

    def loss(self, inputs, data_samples):
        """DDC-AT's training losses of a preprocessed batch."""
        was_training = self.training
        self.eval()
        clean = self.routed_prediction(inputs)
        adversarial = self.attack(inputs, data_samples)
        non_robust = (self.routed_prediction(adversarial) != clean).long()
        self.train(was_training)
        half = len(inputs) // 2
        batch = torch.cat([inputs[:half], adversarial[half:]])
        non_robust[half:] = 0

        features, first, second, router = self.branches(batch)
        head = self.segmentor.decode_head
        losses = add_prefix(
            head.loss_by_feat(
                self.routed(first, second, router), data_samples), 'decode')
        router = F.interpolate(
            router,
            batch.shape[-2:],
            mode='bilinear',
            align_corners=self.segmentor.align_corners)
        losses['router.loss_ce'] = F.cross_entropy(router, non_robust)
        if self.segmentor.with_auxiliary_head:
            losses.update(
                self.segmentor._auxiliary_head_forward_train(
                    features, data_samples))
        return losses

    def forward(self, inputs, data_samples=None, mode='tensor'):
        """The segmentor's forward; ``loss`` mode trains with DDC-AT."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.segmentor(inputs, data_samples, mode)
