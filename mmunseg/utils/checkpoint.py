"""One safe loader for every checkpoint file the package reads.

Checkpoints are untrusted input: unpickling arbitrary objects can run code, so
files are always read with ``weights_only=True``. MMEngine's own checkpoints
hold a few non-tensor objects (the message hub's ``HistoryBuffer`` and the
numpy arrays inside it, a ``Counter`` of scheduler milestones); exactly those
are allow-listed, so resuming works on torch >= 2.6 without disabling safe
loading. ``HistoryBuffer`` also pickles its statistics functions through
``getattr``, which must never be allow-listed (it reaches any attribute of
any object); :class:`PortableHistoryBuffer` saves the same data without them.
"""
import os.path as osp
import pickle
from collections import Counter, OrderedDict

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def _numpy_globals():
    """The numpy reconstructors that pickled arrays and scalars refer to."""
    core = getattr(np, '_core', None) or np.core
    names = [
        core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray,
        np.dtype
    ]
    # numpy >= 1.25 pickles dtypes through their concrete classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return names


class PortableHistoryBuffer(HistoryBuffer):
    """A ``HistoryBuffer`` whose pickle holds data only.

    Loading restores the default statistics (min, max, current, mean) in
    ``HistoryBuffer.__setstate__``, exactly as for the parent class.
    """

    def __getstate__(self):
        return {
            key: value
            for key, value in self.__dict__.items()
            if key != 'statistics_methods'
        }

    @classmethod
    def from_buffer(cls, buffer):
        portable = cls.__new__(cls)
        portable.__dict__.update((key, value)
                                 for key, value in buffer.__dict__.items()
                                 if key != 'statistics_methods')
        return portable


def make_message_hub_portable(checkpoint):
    """Replace the history buffers of a checkpoint being saved, in place."""
    scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
    for key, buffer in scalars.items():
        if isinstance(buffer, HistoryBuffer):
            scalars[key] = PortableHistoryBuffer.from_buffer(buffer)


CHECKPOINT_SAFE_GLOBALS = [
    HistoryBuffer, PortableHistoryBuffer, OrderedDict, Counter
] + _numpy_globals()


def register_checkpoint_safe_globals():
    """Allow-list the classes that MMEngine checkpoints contain.

    MMEngine's runner loads checkpoints (``resume``, ``load_from``) with a
    plain ``torch.load``, which defaults to ``weights_only=True`` on torch
    >= 2.6. Registering the allow-list keeps that safe mode on.
    """
    torch.serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)


def load_checkpoint_file(path, map_location='cpu'):
    """Load a checkpoint file safely.

    Args:
        path (str): Path of a ``.pth`` file.
        map_location (str | torch.device): Where to map the tensors.

    Returns:
        dict: The loaded object.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a checkpoint that can be loaded with
            ``weights_only=True`` and the allow-list above.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        # Not torch.serialization.safe_globals(): on exit it resets the
        # process-wide allow-list, dropping what MMEngine's loads rely on.
        register_checkpoint_safe_globals()
        checkpoint = torch.load(path, map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(
            f'cannot load checkpoint {path}: it is corrupt or holds objects '
            f'outside the safe allow-list ({error})') from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f'checkpoint {path} holds a {type(checkpoint)}, '
                         'expected a dict of tensors')
    return checkpoint


def extract_state_dict(checkpoint, path='<checkpoint>'):
    """Return the state dict inside a checkpoint of any common layout.

    Accepts a bare state dict (the official SAM files), an MMEngine checkpoint
    (``{'state_dict': ..., 'meta': ...}``) and the ``{'model': ...}`` layout.
    """
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    if not checkpoint or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(
            f'unknown checkpoint layout in {path}: expected a dict of '
            f'tensors, optionally under "state_dict" or "model"; '
            f'top-level keys: {sorted(checkpoint)[:8]}')
    return checkpoint
