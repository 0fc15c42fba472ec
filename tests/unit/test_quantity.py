"""Quantity parsing: the API's grammar, exact values, rounding up like MilliValue/Value."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.model.quantity import QuantityError, format_amount, parse_quantity, to_int


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1", 1),
        ("+1", 1),
        ("-2", -2),
        ("1.", 1),
        (".5", Fraction(1, 2)),
        ("100m", Fraction(1, 10)),
        ("250u", Fraction(1, 4000)),
        ("5n", Fraction(5, 10**9)),
        ("1k", 1000),
        ("1M", 10**6),
        ("2G", 2 * 10**9),
        ("1E", 10**18),
        ("1Ki", 1024),
        ("1.5Gi", 1610612736),
        ("1Ei", 2**60),
        ("2e3", 2000),
        ("1E3", 1000),
        ("1.5e-3", Fraction(3, 2000)),
        (" 1Gi ", 2**30),
        (3, 3),
        (0.5, Fraction(1, 2)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "1x",
        "Gi",
        "1e",
        "e3",
        "1_000",
        "Infinity",
        "NaN",
        "1 Gi",
        "1.2.3",
        "1e99999",
        "--1",
        "\u0661",
    ],
)
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_parse_quantity_rejects_non_finite_numbers() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(float("inf"))


@pytest.mark.parametrize(
    ("name", "text", "amount"),
    [
        ("cpu", "1", 1000),
        ("cpu", "250m", 250),
        ("cpu", "0.1", 100),
        ("cpu", "0.1m", 1),  # MilliValue rounds up
        ("cpu", "1500u", 2),
        ("memory", "1Gi", 2**30),
        ("memory", "0.5", 1),  # Value rounds up
        ("memory", "128974848", 128974848),
        ("memory", "129e6", 129000000),
        ("memory", "123Mi", 123 * 2**20),
        ("nvidia.com/gpu", "2", 2),
        ("pods", "110", 110),
    ],
)
def test_to_int(name: str, text: str, amount: int) -> None:
    assert to_int(name, text) == amount


@pytest.mark.parametrize(
    ("name", "amount", "text"),
    [
        ("cpu", 2000, "2"),
        ("cpu", 1500, "1500m"),
        ("memory", 2**30, "1Gi"),
        ("memory", 3 * 2**20, "3Mi"),
        ("memory", 1000, "1000"),
        ("hugepages-2Mi", 4 * 2**20, "4Mi"),
        ("nvidia.com/gpu", 4, "4"),
    ],
)
def test_format_amount(name: str, amount: int, text: str) -> None:
    assert format_amount(name, amount) == text


_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(_SUFFIXES)))
def test_integer_with_suffix(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == number * _SUFFIXES[suffix]


@given(st.integers(min_value=0, max_value=10**9))
def test_millicores_round_trip(millis: int) -> None:
    assert to_int("cpu", f"{millis}m") == millis
    assert to_int("cpu", format_amount("cpu", millis)) == millis


@given(st.integers(min_value=0, max_value=2**62))
def test_memory_round_trip(amount: int) -> None:
    assert to_int("memory", format_amount("memory", amount)) == amount


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999))
def test_decimal_cpu_rounds_up(whole: int, thousandths: int) -> None:
    text = f"{whole}.{thousandths:03d}"
    assert to_int("cpu", text) == whole * 1000 + thousandths
    # A tenth of a millicore more still asks for one more millicore.
    assert to_int("cpu", text + "1") == whole * 1000 + thousandths + 1
