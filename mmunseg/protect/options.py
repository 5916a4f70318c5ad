"""Command-line values of ``tools/protect.py``, parsed by one strict rule.

Every value is checked before anything is read or written, so a typo fails
at once with a message that says what was expected, instead of an hour
into a run (or never).
"""
import argparse
import re
from fractions import Fraction

import torch

_NUMBER = r'(?:\d+(?:\.\d*)?|\.\d+)'
_WHOLE = re.compile(r'\d+')
_FRACTION = re.compile(rf'({_NUMBER})/({_NUMBER})')

#: How a budget is written, for help texts and errors.
BUDGET_RULE = ('a whole number N is N grey levels out of 255 (8 = 8/255); '
               'anything else is written as a fraction of the 8-bit range, '
               'N/255 (8/255, 5.5/255); a bare decimal such as 0.03 or 1.0 '
               'is refused, since it could be read either way')


def parse_budget(text):
    """An L-inf budget in [0, 1] units from its command-line text.

    One rule, no guessing (:data:`BUDGET_RULE`): ``8`` is 8 grey levels,
    ``8/255`` and ``5.5/255`` are fractions of the 8-bit range; ``0.03``,
    ``1.0`` or ``1e-2`` are refused.

    Args:
        text (str): The value as typed.

    Returns:
        float: The budget, ``N / 255`` for ``N`` grey levels.

    Raises:
        argparse.ArgumentTypeError: The value is malformed, ambiguous,
            negative or larger than the whole range.
    """
    text = text.strip()
    if text.startswith('-'):
        raise argparse.ArgumentTypeError(
            f'budget {text} is negative; budgets are 0 to 255 grey levels')
    if _WHOLE.fullmatch(text):
        levels = int(text)
        if levels > 255:
            raise argparse.ArgumentTypeError(
                f'budget {text} is {levels} grey levels, more than the 255 '
                'of the 8-bit range')
        return levels / 255
    if re.fullmatch(_NUMBER, text):
        raise argparse.ArgumentTypeError(
            f'budget {text} is ambiguous: grey levels or a fraction of the '
            f'range? Write {text}/255 for {text} grey levels, or the '
            f'fraction as N/255 ({BUDGET_RULE})')
    match = _FRACTION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f'budget {text!r} is not a budget: {BUDGET_RULE}')
    numerator, denominator = (Fraction(part) for part in match.groups())
    if denominator == 0:
        raise argparse.ArgumentTypeError(f'budget {text} divides by zero')
    value = numerator / denominator
    if value > 1:
        raise argparse.ArgumentTypeError(
            f'budget {text} is {float(value * 255):g} grey levels, more than '
            'the 255 of the 8-bit range')
    return float(value)


def format_budget(eps):
    """``8/255`` or ``5.5/255``: a budget in the form :func:`parse_budget`
    reads (back exactly for whole grey levels, to the last bit otherwise)."""
    levels = eps * 255
    if abs(levels - round(levels)) < 1e-9:
        return f'{round(levels)}/255'
    return f'{levels!r}/255'


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
