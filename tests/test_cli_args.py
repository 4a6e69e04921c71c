"""The shared option parsers: each bad value is named back with what would be accepted."""

import pytest

from dreamscope.cli_args import int_option, positive_float_option
from dreamscope.errors import DreamscopeError


@pytest.mark.parametrize("text, minimum, expected", [("3", 1, 3), ("0", 0, 0), ("-2", -5, -2)])
def test_int_option_accepts_integers_at_or_above_the_minimum(text, minimum, expected):
    assert int_option("--n", text, minimum) == expected


@pytest.mark.parametrize("text", ["0", "-1", "2.5", "many", None])
def test_int_option_names_option_value_and_minimum(text):
    with pytest.raises(DreamscopeError) as err:
        int_option("--windows", text)
    assert str(err.value) == f"--windows {text!r}: expected an integer ≥ 1"


@pytest.mark.parametrize("text", ["0", "-3e-4", "nan", "inf", "fast", None])
def test_positive_float_option_rejects_non_positive_and_non_finite(text):
    with pytest.raises(DreamscopeError, match=r"--lr .*expected a positive number"):
        positive_float_option("--lr", text)


def test_positive_float_option_reads_scientific_notation():
    assert positive_float_option("--lr", "3e-4") == pytest.approx(3e-4)
