"""Asking a running Prometheus through its HTTP API (/api/v1/query)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    status: str
    error: str
    result: list[dict[str, Any]]

    @property
    def has_data(self) -> bool:
        """At least one sample, and at least one that is a number (a quantile over no traffic is NaN)."""
        return any(not math.isnan(float(sample["value"][1])) for sample in self.result)


def query(base_url: str, expr: str) -> Answer:
    response = httpx.get(f"{base_url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    return Answer(body["status"], body.get("error", ""), body.get("data", {}).get("result", []))


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replaces Grafana's ``$name`` and ``${name}`` by ``values[name]``; names not in ``values`` stay."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), expr)
