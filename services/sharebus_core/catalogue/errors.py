"""Catalogue errors that name the file, the entry and the field."""

from __future__ import annotations

from dataclasses import dataclass

from sharebus_core.errors import SharebusError


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.entry}, field '{self.field}'" if self.field else self.entry
        return f"{self.file}: {where}: {self.message}"


class CatalogueError(SharebusError, ValueError):
    """The catalogue is invalid; every problem found is listed, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"the catalogue is invalid ({len(problems)} problem(s)):\n  {lines}")
