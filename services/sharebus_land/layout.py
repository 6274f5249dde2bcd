"""Where each class lands: its own table, or a theme table shared by several classes with one key.

Pure: names only, from the catalogue. A class's own table is named after its code
(``c301001001_000001``) and its columns after the delivered fields. In a theme table the classes
share one key column; a field name that more than one class of the theme uses (the meta columns
always do) is prefixed by its class (``c301001002_000001_seq``). Clashes are decided from the
catalogue's full schemas, not the delivered ones, so a later grant never renames a column.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sharebus_core.catalogue import Catalogue
from sharebus_land.errors import ThemeInvalid
from sharebus_land.shapes import META_COLUMNS

# A theme's table name: a plain SQL name, neither the sink's own tables' (``sharebus_*``) nor a class's own
# table's (``c<code>``), which a theme would then share with rows that are not its own; compared in any case,
# as SQLite compares names.
_THEME_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_NOT_THEMES = re.compile(r"^(sharebus_|c[0-9]{9}_[0-9]{6}$)", re.IGNORECASE)


def class_table(code: str) -> str:
    """``301001001/000001`` -> ``c301001001_000001``: a name every SQL dialect takes unquoted."""
    return "c" + code.replace("/", "_")


@dataclass(frozen=True, slots=True)
class Placement:
    """One class's place: the table, its key column, and the column each field lands in."""

    data_class: str
    table: str
    key_column: str
    prefixed: frozenset[str] = frozenset()  # field names this class lands under its own prefix

    def column(self, name: str) -> str:
        return f"{class_table(self.data_class)}_{name.lstrip('_')}" if name in self.prefixed else name

    @property
    def shared(self) -> bool:
        """In a theme table: a tombstone or a purge clears this class's columns, not the row."""
        return self.table != class_table(self.data_class)


def plan_placements(
    catalogue: Catalogue, classes: Sequence[str], themes: Mapping[str, Sequence[str]]
) -> dict[str, Placement]:
    """A placement for each class the system lands; a theme's classes share its table."""
    placements = {code: Placement(code, class_table(code), catalogue.data_class(code).key_field) for code in classes}
    themed: dict[str, str] = {}
    for theme, members in themes.items():
        for code in members:
            # A class lands in one place: a second theme would silently take it from the first.
            if themed.setdefault(code, theme) != theme:
                raise ThemeInvalid(f"class {code} is in two themes, {themed[code]!r} and {theme!r}: a class lands once")
        if not _THEME_NAME.match(theme) or _NOT_THEMES.match(theme):
            raise ThemeInvalid(
                f"theme {theme!r}: a theme's name is its table's: letters, digits and _, not sharebus_* "
                "nor a class's own table (c<code>); give it as NAME=CLASS,CLASS"
            )
        if len(members) < 2:
            raise ThemeInvalid(f"theme {theme!r}: a theme table merges at least two classes, got {list(members)}")
        keys = {catalogue.data_class(code).key_field for code in members}  # UnknownDataClass names a stranger
        if len(keys) != 1:
            raise ThemeInvalid(f"theme {theme!r}: its classes must share one key field, they have {sorted(keys)}")
        key = keys.pop()
        names = {code: [*catalogue.schema(code).field_names, *META_COLUMNS] for code in members}
        counts = Counter(name for fields in names.values() for name in fields if name != key)
        for code in members:
            clashes = frozenset(name for name in names[code] if counts[name] > 1)
            placements[code] = Placement(code, theme, key, clashes)
    return placements
