"""Command-line values of ``tools/protect.py``, parsed by one strict rule.

Every value is checked before anything is read or written, so a typo fails
at once with a message that says what was expected, instead of an hour
into a run (or never).
"""
import argparse
import re

import torch

from mmunseg.models.budget import parse_eps


def parse_budget(text):
    """An L-inf budget in [0, 1] units from its command-line text, by the
    one rule of :func:`mmunseg.models.budget.parse_eps`.

    Raises:
        argparse.ArgumentTypeError: The value is malformed, ambiguous,
            negative or larger than the whole range.
    """
    try:
        return parse_eps(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def int_in(low, high=None):
    """An argparse type: an int in ``[low, high]`` (no upper end if None)."""
    bounds = f'>= {low}' if high is None else f'in [{low}, {high}]'

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'{text!r} is not a whole number') from None
        if value < low or high is not None and value > high:
            raise argparse.ArgumentTypeError(f'{value} is not {bounds}')
        return value

    return parse


def parse_device(text):
    """A device of this machine that the methods run on: ``cpu``, ``cuda``
    or ``cuda:N``.

    Returns:
        str: The text, checked.

    Raises:
        argparse.ArgumentTypeError: The text names no device, another kind
            of device, or a GPU this machine does not have.
    """
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ('cpu', 'cuda'):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a device: use cpu, cuda or cuda:N')
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise argparse.ArgumentTypeError(
                f'{text!r}: CUDA is not available on this machine')
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(
                f'{text!r}: this machine has {count} GPU(s), cuda:0 to '
                f'cuda:{count - 1}')
    return text


_SIZE = re.compile(r'(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?', re.IGNORECASE)
_UNITS = dict(k=2**10, m=2**20, g=2**30, t=2**40)


def parse_size(text):
    """A memory size: bytes, or a number with K, M, G or T (powers of 1024;
    ``8G``, ``512MiB``, ``1.5GB``).

    Raises:
        argparse.ArgumentTypeError: The text is not a positive size.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a memory size such as 8G or 512M')
    number, unit = match.groups()
    return int(float(number) * _UNITS.get(unit.lower(), 1))
