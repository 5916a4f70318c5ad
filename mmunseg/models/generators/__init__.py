from .base import NoiseGenerator
from .noise_head import UnSegNoiseHead
from .sam_noise_generator import SAMNoiseGenerator

__all__ = ['NoiseGenerator', 'SAMNoiseGenerator', 'UnSegNoiseHead']
