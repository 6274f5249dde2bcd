"""Which schema a record is read as when its writer schema is another version of its class's.

Routes, projections and quality rules are built on the class's schema in the catalogue; a record written
with an earlier version is resolved to it, and one written with a version holding a field the class no
longer has cannot pass unchanged (``RecordHandler.fitted``). Both answers are remembered per writer
schema and class: they are asked for every record (handler.py).
"""

from __future__ import annotations

from typing import Any

from fastavro.schema import to_parsing_canonical_form

from sharebus_router.routes import ClassRoute
from sharebus_router.schema_cache import WriterSchema

# (writer schema id, class) pairs whose reader schema is remembered; beyond it the table starts again.
MAX_READERS = 10_000


def canonical_form(parsed: Any) -> str:
    """Avro's parsing canonical form: equal for two schemas that read and write the same bytes."""
    return to_parsing_canonical_form(parsed)


class ReaderSchemas:
    def __init__(self) -> None:
        # (writer schema id, class) -> the schema to read it as (None: its own), see ``reader``.
        self._readers: dict[tuple[int, str], Any] = {}
        # (writer schema id, class) -> whether the writer schema has fields the class's schema has not.
        self._beyond: dict[tuple[int, str], bool] = {}

    def reader(self, writer: WriterSchema, route: ClassRoute) -> Any:
        """The class's schema to read a record of ``writer`` as; None when ``writer`` is that schema.

        Routes, projections and quality rules are built on the class's schema in the catalogue: a
        record of an earlier version would lack the fields added since (and fail every release of its
        window, or be dead-lettered as unprocessable), so it is resolved to the current version.
        """
        key = (writer.schema_id, route.data_class)
        try:
            return self._readers[key]
        except KeyError:
            pass
        reader = None
        if route.schema is not None and canonical_form(writer.parsed) != canonical_form(route.schema):
            reader = route.schema
        if len(self._readers) >= MAX_READERS:
            self._readers.clear()
        self._readers[key] = reader
        return reader

    def holds_more(self, writer: WriterSchema, route: ClassRoute) -> bool:
        """Whether ``writer`` has a field the class's schema in the catalogue has not (a version from before
        the field was removed from the class)."""
        key = (writer.schema_id, route.data_class)
        found = self._beyond.get(key)
        if found is None:
            current = {f["name"] for f in route.schema["fields"]} if route.schema is not None else None
            found = current is not None and any(f["name"] not in current for f in writer.parsed["fields"])
            if len(self._beyond) >= MAX_READERS:
                self._beyond.clear()
            self._beyond[key] = found
        return found
