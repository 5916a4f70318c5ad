"""PGD adversarial training (Madry et al.) of any MMSeg segmentor: the
defense that robust unlearnable examples (REM, SEM) are built against."""
import torch
from mmengine.model import BaseModel

from mmunseg.registry import MODELS


def check_attack(epsilon, step_size, steps):
    """Raise ValueError unless the attack's settings are usable."""
    for name, value in (('epsilon', epsilon), ('step_size', step_size)):
        if isinstance(
                value,
                bool) or not isinstance(value,
                                        (int, float)) or not 0 < value <= 255:
            raise ValueError(f'{name} must be in (0, 255] grey levels, got '
                             f'{value!r}')
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f'steps must be an int >= 1, got {steps!r}')


@MODELS.register_module()
class PGDAdversarialTraining(BaseModel):
    """Train a segmentor on PGD adversarial examples of each batch.

    Every training batch is replaced by its L-inf PGD adversary against the
    segmentor's own training loss (per-pixel cross-entropy of the decode
    and auxiliary heads): a uniform random start in the ball, then
    ``steps`` signed-gradient ascent steps of ``step_size``, projected on
    the ball and the valid pixel range. The attack runs in *pixel space*
    (0-255, after the data preprocessor's channel conversion, before its
    normalisation): the preprocessor's mean and std map it to the
    normalised inputs, so ``epsilon`` is in grey levels as in the UE
    literature (EM / APBench: 8, step 2, 10 steps; REM evaluates radius 4).
    The segmentor is in eval mode during the attack (EM's ``madrys.py`` and
    DDC-AT do so) and trains on the adversaries alone. Validation and
    testing are the segmentor's own, so MMSeg's evaluators work unchanged.

    Cost: ``steps + 1`` forward and backward passes per training iteration.
    Checkpoints hold the segmentor's weights under ``segmentor.``.

    Args:
        segmentor (dict | BaseSegmentor): The victim, e.g. a config's
            ``model``; its ``data_preprocessor`` serves this wrapper.
        epsilon (float): L-inf radius in grey levels (of 255).
        step_size (float): Ascent step in grey levels.
        steps (int): PGD steps.
        random_start (bool): Start at a uniform point of the ball (Madry);
            False starts at the clean batch.
        data_preprocessor (dict, optional): The segmentor's, if its config
            has none (MMEngine's Runner passes a config's top-level one).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor,
                 epsilon=8,
                 step_size=2,
                 steps=10,
                 random_start=True,
                 data_preprocessor=None,
                 init_cfg=None):
        check_attack(epsilon, step_size, steps)
        if isinstance(segmentor, dict):
            segmentor = dict(segmentor)
            if data_preprocessor is not None:
                segmentor.setdefault('data_preprocessor', data_preprocessor)
            segmentor = MODELS.build(segmentor)
        super().__init__(
            data_preprocessor=segmentor.data_preprocessor, init_cfg=init_cfg)
        self.segmentor = segmentor
        self.epsilon = float(epsilon)
        self.step_size = float(step_size)
        self.steps = steps
        self.random_start = random_start

    def pixel_scale(self, inputs):
        """(mean, std) that map normalised inputs back to 0-255 pixels."""
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False):
            return (preprocessor.mean.to(inputs)[None],
                    preprocessor.std.to(inputs)[None])
        return inputs.new_zeros(()), inputs.new_ones(())

    def attack_loss(self, inputs, data_samples):
        """What the attack ascends: the segmentor's training loss."""
        loss, _ = self.segmentor.parse_losses(
            self.segmentor.loss(inputs, data_samples))
        return loss

    def attack(self, inputs, data_samples):
        """PGD adversaries of a preprocessed batch.

        Args:
            inputs (Tensor): Normalised (B, C, H, W) images.
            data_samples (list[SegDataSample]): Their labels.

        Returns:
            Tensor: Normalised (B, C, H, W) adversarial images.
        """
        mean, std = self.pixel_scale(inputs)
        pixels = (inputs * std + mean).detach()
        delta = torch.zeros_like(pixels)
        if self.random_start:
            delta.uniform_(-self.epsilon, self.epsilon)
        delta = (pixels + delta).clamp(0, 255) - pixels
        was_training = self.segmentor.training
        self.segmentor.eval()
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = self.attack_loss((pixels + delta - mean) / std,
                                    data_samples)
            (grad, ) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + self.step_size * grad.sign()).clamp(
                -self.epsilon, self.epsilon)
            delta = (pixels + delta).clamp(0, 255) - pixels
        self.segmentor.train(was_training)
        return (pixels + delta - mean) / std

    def forward(self, inputs, data_samples=None, mode='tensor'):
        """The segmentor's forward; ``loss`` mode on adversarial inputs."""
        if mode == 'loss':
            return self.segmentor.loss(
                self.attack(inputs, data_samples), data_samples)
        return self.segmentor(inputs, data_samples, mode)
