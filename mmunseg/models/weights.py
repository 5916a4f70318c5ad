"""One loader of checkpoint parts: safe, and exact unless told otherwise.

Every SAM-shaped network of the package (the generator, the surrogate's
encoder, RSPrompter's SAM parts) takes its weights from a prefix of a
checkpoint's state dict, e.g. ``image_encoder.*`` of an official SAM file.
A wrong SAM size or input size must be an error naming the file, never a
silent partial load.
"""
from typing import Dict, List, Mapping

import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from mmunseg.utils import extract_state_dict, load_checkpoint_file


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """The state dict of a checkpoint file, read safely (``weights_only``
    and an allow-list, :func:`mmunseg.utils.load_checkpoint_file`)."""
    return extract_state_dict(load_checkpoint_file(path), path)


def load_parts(parts: Mapping[str, nn.Module],
               state: Mapping[str, Tensor],
               source: str,
               allow_missing: bool = False) -> Dict[str, List[str]]:
    """Copy prefixed parts of a state dict into modules.

    Every part is checked before any is loaded, so a checkpoint that does
    not fit changes nothing. Keys of the file outside the parts, or not in
    their module, are ignored and reported.

    Args:
        parts (Mapping[str, nn.Module]): ``{key prefix: module}``, e.g.
            ``{'image_encoder.': encoder}``; the prefix ``''`` takes every
            key.
        state (Mapping[str, Tensor]): The checkpoint's state dict.
        source (str): The file, for messages.
        allow_missing (bool): Keep module tensors the file lacks at their
            initialisation (e.g. an encoder from a converted MAE) instead
            of failing. Shape mismatches are errors either way.

    Returns:
        dict[str, list[str]]: The keys of each part's module kept at
        initialisation (empty unless ``allow_missing``).

    Raises:
        ValueError: A part has no key in the file, a module tensor is
            missing (unless ``allow_missing``) or has another shape.
    """
    selected, missing, problems = {}, {}, []
    for prefix, module in parts.items():
        part = {
            key[len(prefix):]: value
            for key, value in state.items() if key.startswith(prefix)
        }
        if not part:
            raise ValueError(f'no key of {source} starts with {prefix!r}; '
                             f'first keys: {sorted(state)[:5]}')
        own = module.state_dict()
        missing[prefix] = sorted(set(own) - set(part))
        mismatched = [
            f'{prefix}{key}: file {tuple(part[key].shape)} vs model '
            f'{tuple(own[key].shape)}' for key in sorted(own)
            if key in part and part[key].shape != own[key].shape
        ]
        absent = [] if allow_missing else missing[prefix]
        if absent or mismatched:
            problems.append(f'{prefix!r}: {len(absent)} missing keys '
                            f'{absent[:5]}, {len(mismatched)} mismatched '
                            f'shapes {mismatched[:5]}')
        selected[prefix] = {key: part[key] for key in own if key in part}
    if problems:
        raise ValueError(f'checkpoint {source} does not fit the model (wrong '
                         f'SAM size or img_size?): {"; ".join(problems)}')
    for prefix, module in parts.items():
        module.load_state_dict(selected[prefix], strict=not allow_missing)
    used = {prefix + key for prefix, part in selected.items() for key in part}
    ignored = sorted(set(state) - used)
    kept = [prefix + key for prefix, keys in missing.items() for key in keys]
    print_log(
        f'loaded {sorted(prefix.rstrip(".") for prefix in parts)} from '
        f'{source}' +
        (f'; {len(kept)} keys kept at init, e.g. {kept[:3]}' if kept else '') +
        (f'; ignored {len(ignored)} keys such as {ignored[:3]}'
         if ignored else ''),
        logger='current')
    return missing
