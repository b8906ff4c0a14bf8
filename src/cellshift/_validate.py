"""The allowed range of every numeric option, checked the same way by the Python API and the command line.

A :class:`Bounds` says what a number may be (an integer or a real number, and its range). The API
calls :meth:`Bounds.check` on a parameter and raises a ``ValueError`` that names it; the command
line passes :meth:`Bounds.parse` as an option's argparse ``type``, so a bad value is refused
before any work, with the same words. :func:`check_options` checks many parameters at once
(e.g. the fields of a settings dataclass).
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Bounds:
    """What a numeric option may be: its kind and its range.

    Attributes
    ----------
    integer
        Whether only whole numbers are allowed.
    minimum, maximum
        Inclusive bounds (``None``: unbounded).
    above, below
        Exclusive bounds (``None``: unbounded).
    meaning
        Why, added to the message (e.g. ``"a standard deviation needs two draws"``).
    """

    integer: bool
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    meaning: str = ""

    def describe(self) -> str:
        """The allowed values in words, e.g. ``"an integer >= 1"`` or ``"a number in (0, 1]"``."""
        kind = "an integer" if self.integer else "a number"
        low = ("[", self.minimum) if self.minimum is not None else ("(", self.above)
        high = ("]", self.maximum) if self.maximum is not None else (")", self.below)
        if low[1] is not None and high[1] is not None:
            text = f"{kind} in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
        elif low[1] is not None:
            text = f"{kind} {'>=' if low[0] == '[' else '>'} {_number(low[1])}"
        elif high[1] is not None:
            text = f"{kind} {'<=' if high[0] == ']' else '<'} {_number(high[1])}"
        else:
            text = f"a finite {kind.split()[1]}"
        return f"{text} ({self.meaning})" if self.meaning else text

    def allows(self, value: object) -> bool:
        """Whether ``value`` is of the right kind and within the range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )

    def check(self, value: object, name: str) -> None:
        """Raise a ``ValueError`` naming ``name`` unless :meth:`allows` ``value``."""
        if not self.allows(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")

    def parse(self, text: str) -> int | float:
        """An argparse ``type``: the number written in ``text``, refused with the allowed range when outside it."""
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        if not self.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value


def _number(value: float) -> str:
    """``1`` for 1.0, ``0.5`` for 0.5."""
    return str(int(value)) if float(value).is_integer() else str(value)


def at_least(minimum: int, meaning: str = "") -> Bounds:
    """Integers of at least ``minimum``."""
    return Bounds(integer=True, minimum=minimum, meaning=meaning)


POSITIVE_INT = at_least(1)
"""Counts of things that must exist: steps, cells, batch sizes, epochs."""
NON_NEGATIVE_INT = at_least(0)
"""Counts where 0 means none (and random seeds)."""
POSITIVE = Bounds(integer=False, above=0)
"""Learning rates, margins, clipping thresholds."""
NON_NEGATIVE = Bounds(integer=False, minimum=0)
"""Weight decay, gradient-norm clipping (0: off)."""
PROBABILITY = Bounds(integer=False, above=0, maximum=1)
"""FDR thresholds, quantiles and windows of ranks: in (0, 1]."""
FRACTION = Bounds(integer=False, minimum=0, below=1)
"""Shares held out, where 0 holds none out: in [0, 1)."""
OPEN_FRACTION = Bounds(integer=False, above=0, below=1)
"""Shares held out that must hold some cells out and keep some: in (0, 1)."""
NULL_DRAWS = at_least(2, "a null's spread needs at least 2 draws")
"""Draws of a null distribution."""
GROUP_CELLS = at_least(2, "a group's distances need at least 2 cells")
"""Least cells of a group that is scored or tested."""
FOLDS = at_least(2, "cross-validation needs at least 2 folds")
"""Folds of a cross-validation."""


def check_options(values: Mapping[str, object], rules: Mapping[str, Bounds]) -> None:
    """Check every ``values[name]`` against ``rules[name]``; ``None`` (an unset option) passes.

    Parameters
    ----------
    values
        Parameter name -> value (e.g. ``vars(settings)``).
    rules
        Parameter name -> its :class:`Bounds`.

    Raises
    ------
    ValueError
        For the first value outside its bounds, naming the parameter.
    """
    for name, bounds in rules.items():
        value = values[name]
        if value is not None:
            bounds.check(value, name)


class CheckedSettings:
    """Base of the settings dataclasses: their ``BOUNDS`` (option -> :class:`Bounds`) are checked on creation.

    A subclass declares ``BOUNDS: ClassVar[dict[str, Bounds]] = {...}``; options it does not name
    are not checked. The CLI reads the same ``BOUNDS`` for its argparse types.
    """

    BOUNDS: ClassVar[dict[str, Bounds]] = {}

    def __post_init__(self) -> None:
        check_options(vars(self), self.BOUNDS)
