import os

import pytest
import torch

from mmunseg.utils import register_all_modules


@pytest.fixture(autouse=True, scope='session')
def _registered():
    register_all_modules()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
