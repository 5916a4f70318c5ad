"""What training and protection need of a noise generator."""
from abc import abstractmethod
from typing import Optional, Set, Tuple

from mmengine.model import BaseModule
from torch import Tensor


class NoiseGenerator(BaseModule):
    """A network that maps prompted images to unit-range noise.

    Training (:class:`mmunseg.models.UnSeg`) and protection
    (``mmunseg.protect``) use a generator through this interface only: they
    never reach into its parts. The budget is applied outside, by the caller
    (:class:`mmunseg.models.budget.Budget`).

    Subclasses set ``img_size`` and ``dc_free`` and implement
    :meth:`load_weights` and :meth:`forward`.

    Attributes:
        img_size (int): Side of the square input, S.
        dc_free (bool): Whoever applies the budget first removes the noise's
            per-channel mean on the object and on the background
            (:func:`mmunseg.models.budget.remove_dc`).
    """

    img_size: int
    dc_free: bool = False

    @property
    def noise_size(self) -> int:
        """Side of the square noise map and of mask prompts: S / 4."""
        return self.img_size // 4

    @property
    def num_codes(self) -> int:
        """Object codes the generator knows (0: none)."""
        return 0

    @abstractmethod
    def load_weights(self, path: str) -> Set[str]:
        """Load weights from a checkpoint file, safely.

        Returns:
            set[str]: The top-level parts that were loaded; a trained
            generator file holds ``noise_head``.
        """

    @abstractmethod
    def forward(self,
                images: Tensor,
                points: Optional[Tuple[Tensor, Tensor]] = None,
                boxes: Optional[Tensor] = None,
                masks: Optional[Tensor] = None,
                codes: Optional[Tensor] = None) -> Tensor:
        """Unit-range noise of a batch of prompted images.

        Args:
            images (Tensor): (B, 3, S, S) in [0, 1], zero-padded squares.
            points (tuple[Tensor, Tensor], optional): Coordinates (B, N, 2)
                as (x, y) in input pixels and labels (B, N), 1 = object.
            boxes (Tensor, optional): (B, 4) xyxy in input pixels.
            masks (Tensor, optional): (B, 1, S/4, S/4) mask prompts, 0 / 255.
            codes (Tensor, optional): (B, ) int64 object codes in
                ``0..num_codes`` (0 = background), for a generator with
                codes.

        Returns:
            Tensor: Noise in [-1, 1], (B, 3, S/4, S/4).
        """
