from .noise_head import UnSegNoiseHead
from .sam_noise_generator import SAMNoiseGenerator

__all__ = ['SAMNoiseGenerator', 'UnSegNoiseHead']
