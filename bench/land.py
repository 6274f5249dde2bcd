"""Rows landed per second by sharebus land, against a plain ``executemany`` insert of the same rows.

``python -m bench.land [--rows 20000] [--rounds 3]``. Both write the same enterprise rows into the same
database, in transactions of the same size (the sink's ``max_records``), on SQLite (a file) and on
PostgreSQL (a throw-away server, as the tests start it). The sink runs its whole path but Kafka: a
reader hands it decoded deliveries, and it builds rows, upserts them by key and writes its offsets
in each transaction. The baseline is the DB-API cursor's ``executemany`` of a plain INSERT into a
table of the same columns, one commit per chunk: what a hand-written loader does, with no upsert,
no offsets and so no exactly-once. It prints the median round and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_land.reader import DeliveryReader, Incoming, WriterSchema
from sharebus_land.settings import LandSettings
from sharebus_land.sink import Sink
from sharebus_land.store import LandStore, engine_url
from tests.support.postgres import running_postgres

CATALOGUE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "catalogue"
ENTERPRISE = "301001001/000001"
TOPIC = "bench.dlv.tax-levy"
CHUNK = 2000
COLUMNS = ["uscc", "name", "legal_rep_name", "registered_capital", "established", "seq", "note"]


def records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "uscc": f"91500000MA{seq:07d}X",
            "name": f"重庆测试企业{seq}有限公司",
            "legal_rep_name": "张三",
            "registered_capital": 100.0 + seq,
            "established": dt.date(2020, 1, 1),
            "seq": seq,
            "note": None,
        }
        for seq in range(count)
    ]


class ListReader:
    def __init__(self, items: list[Incoming]) -> None:
        self.items = items
        self.at = 0

    def poll(self, timeout_s: float) -> Incoming | None:
        if self.at >= len(self.items):
            return None
        self.at += 1
        return self.items[self.at - 1]

    def close(self) -> None:
        pass


def land_rate(catalogue: Catalogue, url: str, rows: list[dict[str, Any]]) -> float:
    schema = WriterSchema(1, json.loads(catalogue.schema(ENTERPRISE).text), None)
    items = [
        Incoming(ENTERPRISE, "AMR", f"r{i}", None, None, row["uscc"], row, schema, (TOPIC, 0, i), None)
        for i, row in enumerate(rows)
    ]

    def reader(_start: Mapping[tuple[str, int], int]) -> DeliveryReader:
        return ListReader(items)  # type: ignore[return-value]

    settings = LandSettings(database_url=url, max_records=CHUNK, max_wait_ms=1000)
    sink = Sink(settings, "tax-levy", catalogue, LandStore(url), reader)
    started = time.perf_counter()
    while sink.step():
        pass
    elapsed = time.perf_counter() - started
    sink.close()
    return len(rows) / elapsed


def executemany_rate(url: str, rows: list[dict[str, Any]]) -> float:
    engine = sa.create_engine(engine_url(url))
    table = sa.Table(
        "plain_enterprise",
        sa.MetaData(),
        sa.Column("uscc", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("legal_rep_name", sa.Text),
        sa.Column("registered_capital", sa.Double),
        sa.Column("established", sa.Date),
        sa.Column("seq", sa.BigInteger),
        sa.Column("note", sa.Text),
    )
    table.create(engine)
    marker = "?" if engine.dialect.name == "sqlite" else "%s"
    # Fixed names only (no input reaches this text): the plain statement a hand-written loader runs.
    insert = f"INSERT INTO plain_enterprise ({', '.join(COLUMNS)}) VALUES ({', '.join([marker] * len(COLUMNS))})"  # noqa: S608
    tuples = [tuple(row[c] for c in COLUMNS) for row in rows]
    connection = engine.raw_connection()
    started = time.perf_counter()
    for at in range(0, len(tuples), CHUNK):
        cursor = connection.cursor()
        cursor.executemany(insert, tuples[at : at + CHUNK])
        connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    engine.dispose()
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    catalogue = load_catalogue(CATALOGUE)
    rows = records(args.rows)
    results: dict[str, dict[str, float]] = {}
    with running_postgres() as server, tempfile.TemporaryDirectory() as scratch:

        def sqlite_url(run: str) -> str:
            return f"sqlite:///{scratch}/{run}.db"

        def postgres_url(_run: str) -> str:
            return server.new_database()

        targets: dict[str, Callable[[str], str]] = {"sqlite": sqlite_url, "postgresql": postgres_url}
        for name, new_url in targets.items():
            land, plain = [], []
            for r in range(args.rounds):  # interleaved, so a slow moment of the machine hits both
                land.append(land_rate(catalogue, new_url(f"land{r}"), rows))
                plain.append(executemany_rate(new_url(f"plain{r}"), rows))
            results[name] = {"land": statistics.median(land), "executemany": statistics.median(plain)}
    print(f"{args.rows} rows, transactions of {CHUNK}, median of {args.rounds} rounds")
    for name, figures in results.items():
        ratio = figures["land"] / figures["executemany"]
        landed_rate, plain_rate = figures["land"], figures["executemany"]
        print(f"{name:10s} land {landed_rate:9.0f} rows/s | executemany {plain_rate:9.0f} rows/s | ratio {ratio:.2f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"land-{stamp}.json").write_text(
        json.dumps({"rows": args.rows, "chunk": CHUNK, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
