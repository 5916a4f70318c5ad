import torch
import torch.nn as nn
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP
from torch import Tensor


class ScratchMaskDecoder(nn.Module):
    """SAM's mask decoder without the IoU token and head.

    The surrogate variant of UnSeg: mask tokens only, one mask returned.

    Args:
        transformer (nn.Module): A ``TwoWayTransformer``.
        transformer_dim (int): Its channels.
        num_mask_tokens (int): Mask tokens (3); the first gives the output.
    """

    def __init__(self, transformer, transformer_dim=256, num_mask_tokens=3):
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = num_mask_tokens
        self.mask_tokens = nn.Embedding(num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(
                transformer_dim, transformer_dim // 4, 2, stride=2),
            LayerNorm2d(transformer_dim // 4), nn.GELU(),
            nn.ConvTranspose2d(
                transformer_dim // 4, transformer_dim // 8, 2, stride=2),
            nn.GELU())
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(num_mask_tokens))

    def forward(self, image_embedding: Tensor, image_pe: Tensor,
                sparse: Tensor, dense: Tensor) -> Tensor:
        """Predict the first mask's logits.

        Args:
            image_embedding (Tensor): (B, C, h, w).
            image_pe (Tensor): (1, C, h, w).
            sparse (Tensor): Sparse prompt embeddings, (B, N, C).
            dense (Tensor): Dense prompt embeddings, (B, C, h, w).

        Returns:
            Tensor: Logits, (B, 1, 4h, 4w).
        """
        batch = image_embedding.shape[0]
        tokens = self.mask_tokens.weight.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat([tokens, sparse], dim=1)
        token_outputs, src = self.transformer(
            image_embedding + dense, image_pe.expand(batch, -1, -1, -1),
            tokens)
        src = src.transpose(1, 2).reshape(image_embedding.shape)
        upscaled = self.output_upscaling(src)
        hyper = self.output_hypernetworks_mlps[0](token_outputs[:, 0])
        b, c, h, w = upscaled.shape
        return (hyper.unsqueeze(1) @ upscaled.reshape(b, c, h * w)).reshape(
            b, 1, h, w)
