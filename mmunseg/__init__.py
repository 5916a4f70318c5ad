from .utils.checkpoint import register_checkpoint_safe_globals
from .version import __version__

# Resuming an MMEngine run reads its checkpoint with torch.load's safe mode;
# allow-list the few classes such checkpoints hold as soon as we are imported.
register_checkpoint_safe_globals()

__all__ = ['__version__']
