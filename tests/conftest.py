import os

import pytest
import torch
from mmengine.registry import DefaultScope

from mmunseg.utils import register_all_modules


@pytest.fixture(autouse=True, scope='session')
def _registered():
    register_all_modules()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """A Runner leaves its scope (mmseg, mmdet, ...) as the current default
    scope for the rest of the process; without this, a later test building
    an mmunseg model looks for it in that scope's registry."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict = saved
