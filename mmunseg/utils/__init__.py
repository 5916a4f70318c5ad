from .checkpoint import (CHECKPOINT_SAFE_GLOBALS, extract_state_dict,
                         load_checkpoint_file,
                         register_checkpoint_safe_globals)
from .dist import setup_cpu_distributed
from .setup_env import register_all_modules

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'extract_state_dict', 'load_checkpoint_file',
    'register_checkpoint_safe_globals', 'register_all_modules',
    'setup_cpu_distributed'
]
