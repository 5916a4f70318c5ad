import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from mmunseg.models.sam.builder import build_image_encoder, resolve_arch
from mmunseg.models.weights import load_parts, read_state_dict


@MODELS.register_module()
class SAMImageEncoder(BaseModule):
    """SAM's ViT image encoder as a detector backbone.

    Returns the outputs of selected transformer blocks, for the feature
    aggregator, together with SAM's image embedding (the neck's output), for
    the mask decoder. RSPrompter keeps the encoder frozen: it runs without
    gradients and stays in eval mode.

    Args:
        arch (str | dict): SAM size (``vit_b``, ``vit_l``, ``vit_h``,
            ``tiny`` or an override dict), see ``resolve_arch``.
        img_size (int): Square input side; inputs must be padded to it.
        out_indices (Sequence[int], optional): Blocks whose outputs are
            returned. Defaults to every other block, ending with the last
            (6 of ViT-B's 12).
        frozen (bool): Freeze the encoder. ``False`` trains it, for a
            randomly initialised encoder (the CPU recipe).
        checkpoint (str, optional): SAM file whose ``image_encoder.*``
            weights :meth:`init_weights` loads.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 arch='vit_b',
                 img_size=1024,
                 out_indices=None,
                 frozen=True,
                 checkpoint=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch)
        depth = arch['depth']
        if out_indices is None:
            out_indices = range((depth - 1) % 2, depth, 2)
        self.out_indices = tuple(out_indices)
        if not all(0 <= index < depth for index in self.out_indices):
            raise ValueError(f'out_indices {self.out_indices} outside the '
                             f'{depth} blocks')
        self.img_size = img_size
        self.frozen = frozen
        self.checkpoint = checkpoint
        self.embed_dim = arch['embed_dim']
        self.out_channels = arch['prompt_embed_dim']
        self.image_encoder = build_image_encoder(arch, img_size)
        if frozen:
            self.image_encoder.requires_grad_(False)

    def init_weights(self):
        super().init_weights()
        if self.checkpoint is not None:
            load_parts({'image_encoder.': self.image_encoder},
                       read_state_dict(self.checkpoint), self.checkpoint)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            self.image_encoder.eval()
        return self

    def forward(self, images):
        """Encode a batch of normalised, padded images.

        Args:
            images (Tensor): (B, 3, S, S), S = ``img_size``.

        Returns:
            tuple[tuple[Tensor], Tensor]: The outputs of the blocks in
            ``out_indices``, each (B, C_vit, S/16, S/16), and the image
            embedding (B, C_prompt, S/16, S/16).
        """
        if images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f'SAM encoder expects {self.img_size}x{self.img_size} '
                f'inputs, got {tuple(images.shape[-2:])}: pad the batch to '
                'img_size (DetDataPreprocessor pad_size_divisor=img_size)')
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.frozen):
            encoder = self.image_encoder
            x = encoder.patch_embed(images)
            if encoder.pos_embed is not None:
                x = x + encoder.pos_embed
            outs = []
            for index, block in enumerate(encoder.blocks):
                x = block(x)
                if index in self.out_indices:
                    outs.append(x.permute(0, 3, 1, 2))
            embedding = encoder.neck(x.permute(0, 3, 1, 2))
        return tuple(outs), embedding
