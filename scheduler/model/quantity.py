"""Kubernetes resource quantities ("500m", "1Gi", "2e3") as integers.

CPU is counted in millicores, everything else in base units (bytes for memory
and storage, items for extended resources), rounded up the way the API server
and kube-scheduler do (`Quantity.MilliValue()` / `Quantity.Value()`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


# The API's grammar: a signed decimal number, then a binary or decimal SI suffix
# or an exponent. Checked up front because Decimal alone also accepts "Infinity",
# "NaN", "1_000" and inner whitespace, none of which the API server would store.
_QUANTITY = re.compile(
    r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?[0-9]+))?"
)
# Far beyond any real amount (int64 ends near 9.2e18), small enough that a hostile
# "1e999999999" cannot make us build a billion-digit integer.
_MAX_EXPONENT = 64


@lru_cache(maxsize=4096)
def parse_quantity(text: str | int | float) -> Fraction:
    """Exact value of a quantity string, e.g. ``"1.5Gi"`` -> 1610612736."""
    if isinstance(text, (int, float)):
        try:
            return Fraction(text)
        except (ValueError, OverflowError):
            raise QuantityError(f"invalid quantity {text!r}") from None
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QuantityError(f"invalid quantity {text!r}")
    digits, suffix, exponent = match.groups()
    value = Fraction(Decimal(digits))
    if exponent is not None:
        power = int(exponent)
        if abs(power) > _MAX_EXPONENT:
            raise QuantityError(f"quantity {text!r} is out of range")
        return value * Fraction(10) ** power
    if suffix is None:
        return value
    return value * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def to_int(name: str, text: str | int | float) -> int:
    """A resource amount in scheduler units: millicores for cpu, base units otherwise."""
    value = parse_quantity(text)
    if name == CPU:
        value *= 1000
    return math.ceil(value)


def format_amount(name: str, amount: int) -> str:
    """Human form of an amount in scheduler units, for messages."""
    if name == CPU:
        return f"{amount // 1000}" if amount % 1000 == 0 else f"{amount}m"
    if name in (MEMORY, EPHEMERAL_STORAGE) or name.startswith("hugepages-"):
        for suffix, factor in reversed(_BINARY.items()):
            if amount >= factor and amount % factor == 0:
                return f"{amount // factor}{suffix}"
    return str(amount)
