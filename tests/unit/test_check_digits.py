from __future__ import annotations

import pytest

from sharebus_rules.check_digits import (
    is_valid_resident_id,
    is_valid_uscc,
    resident_id_check_char,
    uscc_check_char,
)


def test_known_valid_examples() -> None:
    assert is_valid_uscc("91310110666007217T")
    assert is_valid_resident_id("11010519491231002X")
    assert uscc_check_char("91310110666007217") == "T"
    assert resident_id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize("code", ["91310110666007217A", "91310110666007217", "9131011066600721IT", ""])
def test_invalid_uscc(code: str) -> None:
    assert not is_valid_uscc(code)


@pytest.mark.parametrize("number", ["110105194912310021", "1101051949123100", "A1010519491231002X"])
def test_invalid_resident_id(number: str) -> None:
    assert not is_valid_resident_id(number)


def test_bad_input_to_check_char_raises() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_char("I" * 17)
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_char("12")
