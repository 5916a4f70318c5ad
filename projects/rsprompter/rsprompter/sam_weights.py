"""Load one part of an official SAM checkpoint into a module."""
from mmengine.logging import print_log

from mmunseg.utils import extract_state_dict, load_checkpoint_file


def load_sam_part(module, path, prefix):
    """Copy the ``prefix`` part of a SAM file into ``module``, exactly.

    The file is read with the package's safe loader (``weights_only`` and an
    allow-list). Every tensor of ``module`` must be in the file with the same
    shape: a wrong SAM size or input size is an error, never a silent partial
    load.

    Args:
        module (nn.Module): The SAM part, e.g. an ``ImageEncoderViT``.
        path (str): Official SAM file (``sam_vit_b_01ec64.pth``) or any
            checkpoint whose state dict holds the part under ``prefix``.
        prefix (str): Key prefix of the part, e.g. ``'image_encoder.'``.
    """
    state = extract_state_dict(load_checkpoint_file(path), path)
    part = {
        key[len(prefix):]: value
        for key, value in state.items() if key.startswith(prefix)
    }
    if not part:
        raise ValueError(f'no key of {path} starts with {prefix!r}; first '
                         f'keys: {sorted(state)[:5]}')
    own = module.state_dict()
    missing = sorted(set(own) - set(part))
    mismatched = [
        f'{key}: file {tuple(part[key].shape)} vs model '
        f'{tuple(own[key].shape)}' for key in sorted(own)
        if key in part and part[key].shape != own[key].shape
    ]
    if missing or mismatched:
        raise ValueError(
            f'{prefix!r} of {path} does not fit the model (wrong SAM size or '
            f'img_size?): {len(missing)} missing keys {missing[:5]}, '
            f'{len(mismatched)} mismatched shapes {mismatched[:5]}')
    unexpected = sorted(set(part) - set(own))
    module.load_state_dict({key: part[key] for key in own})
    print_log(
        f'loaded {prefix!r} from {path}' +
        (f'; ignored {len(unexpected)} keys such as {unexpected[:3]}'
         if unexpected else ''),
        logger='current')
