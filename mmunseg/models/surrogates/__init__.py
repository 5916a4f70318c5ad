from .mmseg_surrogate import MMSegSurrogate
from .sam_surrogate import SAMSurrogate
from .scratch_mask_decoder import ScratchMaskDecoder

__all__ = ['MMSegSurrogate', 'SAMSurrogate', 'ScratchMaskDecoder']
