"""The root of every error sharebus raises on purpose.

Callers that only need to know "sharebus refused or failed, and said why" catch ``SharebusError``.
Each error also keeps the builtin base that describes its kind (``ValueError`` for bad input,
``LookupError`` for a missing thing, ``RuntimeError`` for a failed operation), so narrower handlers
still work.
"""

from __future__ import annotations


class SharebusError(Exception):
    """Base of the errors sharebus raises on purpose; the message says what failed and why."""
