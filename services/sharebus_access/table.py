"""The least-privilege table as markdown, for docs/security.md (``python -m sharebus_access.table``).

Rendered from the same rows the reconciler applies, so the document cannot drift from the rules:
``tests/unit/test_acls.py`` checks that docs/security.md holds exactly this table.
"""

from __future__ import annotations

from sharebus_access.acls import Need, PatternType, service_needs
from sharebus_core.principals import Principals
from sharebus_core.topics import TopicNames

NS, REGNS = "<ns>", "<regns>"
TABLE_START = "<!-- acl-table:start (generated: python -m sharebus_access.table) -->"
TABLE_END = "<!-- acl-table:end -->"


def _row(principal: str, kind: str, name: str, pattern: PatternType, operations: str, why: str) -> str:
    shown = f"`{name}`" if pattern is PatternType.LITERAL else f"`{name}*`"
    return f"| `{principal}` | {kind.lower()} | {shown} | {operations} | {why} |"


def _service_row(need: Need) -> str:
    owner = Principals(REGNS) if need.service == "registry" else Principals(NS)
    operations = ", ".join(op.value for op in need.operations)
    return _row(owner.service(need.service), need.resource_type.value, need.name, need.pattern, operations, need.why)


def _system_rows() -> list[str]:
    t, p = TopicNames(NS), Principals(NS)
    system = p.system("<system>")
    return [
        _row(system, "TOPIC", t.source("<class>"), PatternType.LITERAL, "WRITE, DESCRIBE", "each class it provides"),
        _row(system, "TOPIC", t.delivery("<system>"), PatternType.LITERAL, "READ, DESCRIBE", "its own deliveries"),
        _row(
            system, "GROUP", p.consumer_group_prefix("<system>"), PatternType.PREFIXED, "READ, DESCRIBE", "its groups"
        ),
    ]


def service_table_markdown() -> str:
    """The whole table: systems first, then each bus service. A trailing ``*`` marks a prefixed rule."""
    lines = [
        "| principal | resource | name | operations | why |",
        "| --- | --- | --- | --- | --- |",
        *_system_rows(),
        *(_service_row(need) for need in service_needs(NS, REGNS)),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"{TABLE_START}\n{service_table_markdown()}\n{TABLE_END}")
