"""Check characters of the base-registry identifiers (GB 32100-2015 and GB 11643-1999)."""

from __future__ import annotations

from operator import mul

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Lookups instead of str.index and int() per character: the router checks these on every record.
_USCC_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHJKLMNPQRTUWXY")}
_DIGIT = {str(d): d for d in range(10)}


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code."""
    if len(first17) != 17 or any(c not in USCC_CHARSET for c in first17):
        raise ValueError(f"{first17!r} is not 17 characters of the USCC charset")
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    if len(code) != 18:
        return False
    try:
        total = sum(map(mul, map(_USCC_VALUE.__getitem__, code[:17]), _USCC_WEIGHTS))
    except KeyError:
        return False  # a character outside the charset
    return USCC_CHARSET[(31 - total % 31) % 31] == code[17]


def resident_id_check_char(first17: str) -> str:
    """The 18th character of a resident ID number (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"{first17!r} is not 17 digits")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(number: str) -> bool:
    if len(number) != 18:
        return False
    try:
        total = sum(map(mul, map(_DIGIT.__getitem__, number[:17]), _ID_WEIGHTS))
    except KeyError:
        return False  # not a digit (str.isdigit would also take other scripts' digits)
    return _ID_CHECK[total % 11] == number[17].upper()
