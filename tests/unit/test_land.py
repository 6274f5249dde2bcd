"""sharebus land without Kafka: tables from schemas, upserts and tombstones, theme tables, schema
evolution, whole batches, and the offsets that go with them (SQLite; the integration tests add PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_land.errors import IncompatibleSchema, LandError, ThemeInvalid
from sharebus_land.grants import GrantStanding
from sharebus_land.layout import class_table, plan_placements
from sharebus_land.offsets import OffsetBook
from sharebus_land.reader import DeliveryReader, Incoming, WriterSchema
from sharebus_land.settings import LandSettings
from sharebus_land.shapes import ClassShape, column_kind, evolve
from sharebus_land.sink import Sink
from sharebus_land.store import LandStore, Unit
from sharebus_sdk.batches import BatchInfo

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
ENTERPRISE, PENALTY, STATS = "301001001/000001", "301001002/000001", "301001004/000001"
TOPIC = "t.dlv.tax-levy"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(CATALOGUE)


def schema_of(catalogue: Catalogue, code: str, schema_id: int, drop: tuple[str, ...] = ()) -> WriterSchema:
    document = json.loads(catalogue.schema(code).text)
    document["fields"] = [f for f in document["fields"] if f["name"] not in drop]
    return WriterSchema(schema_id, document, None)


class FakeReader:
    """Hands out prepared messages in order; remembers where the sink asked it to start."""

    def __init__(self, items: list[Incoming], start: Mapping[tuple[str, int], int]) -> None:
        self.start = dict(start)
        self.items = [i for i in items if i.position[2] >= self.start.get((TOPIC, i.position[1]), 0)]

    def poll(self, timeout_s: float) -> Incoming | None:
        return self.items.pop(0) if self.items else None

    def positions(self) -> dict[int, int]:
        return {0: 10**9}

    def high_watermarks(self) -> dict[int, int]:
        return {0: 0}

    def lag(self) -> dict[int, int]:
        return {0: len(self.items)}

    def close(self) -> None:
        pass


class Feed:
    """Builds the messages of one delivery partition."""

    def __init__(self) -> None:
        self.items: list[Incoming] = []

    def add(
        self,
        code: str,
        key: str | None,
        value: dict[str, Any] | None,
        schema: WriterSchema | None,
        batch: BatchInfo | None = None,
        key_withheld: str | None = None,
    ) -> None:
        position = (TOPIC, 0, len(self.items))
        self.items.append(
            Incoming(code, "AMR", f"r{len(self.items)}", "g1", None, key, value, schema, position, batch, key_withheld)
        )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite here; tests/integration/test_land_postgres.py runs the same tests with a PostgreSQL database."""
    return f"sqlite:///{tmp_path / 'land.db'}"


def sink(db_url: str, catalogue: Catalogue, feed: Feed, **settings: Any) -> tuple[Sink, FakeReader]:
    made: list[FakeReader] = []

    def reader(start: Mapping[tuple[str, int], int]) -> DeliveryReader:
        made.append(FakeReader(feed.items, start))
        return made[-1]  # type: ignore[return-value]

    land = LandSettings(database_url=db_url, **{"max_wait_ms": 5, **settings})
    return Sink(land, "tax-levy", catalogue, LandStore(land.database_url), reader), made[-1]


def drain(s: Sink) -> None:
    while s.step():
        pass


def enterprise(seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "uscc": f"U{seq}",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
        **extra,
    }


def test_avro_types_map_to_column_kinds() -> None:
    assert column_kind("string") == "text"
    assert column_kind(["null", "long"]) == "bigint"
    assert column_kind("int") == "bigint"  # int promotes to long: one kind
    assert column_kind({"type": "int", "logicalType": "date"}) == "date"
    assert column_kind({"type": "record", "name": "x", "fields": []}) == "json"


def test_a_new_field_is_a_new_column_and_a_changed_kind_is_refused() -> None:
    assert evolve({"a": "text"}, [("a", "text"), ("b", "bigint")], "x") == [("b", "bigint")]
    assert evolve({"a": "text", "gone": "text"}, [("a", "text")], "x") == []
    with pytest.raises(IncompatibleSchema, match=r"column 'a' holds text values .* now sends bigint"):
        evolve({"a": "text"}, [("a", "bigint")], "class X")


def test_theme_tables_share_the_key_and_prefix_clashing_fields(catalogue: Catalogue) -> None:
    placements = plan_placements(catalogue, [ENTERPRISE, PENALTY], {"enterprise": [ENTERPRISE, PENALTY]})
    enterprise_place, penalty_place = placements[ENTERPRISE], placements[PENALTY]
    assert enterprise_place.table == penalty_place.table == "enterprise"
    assert enterprise_place.key_column == "uscc"
    assert enterprise_place.column("name") == "name"  # only the enterprise class has it
    assert enterprise_place.column("seq") == "c301001001_000001_seq"
    assert penalty_place.column("seq") == "c301001002_000001_seq"
    assert penalty_place.column("_grant_id") == "c301001002_000001_grant_id"
    with pytest.raises(ThemeInvalid, match="share one key field"):
        plan_placements(catalogue, [], {"bad": [ENTERPRISE, STATS]})


@pytest.mark.parametrize("name", ["", "sharebus_offsets", "SHAREBUS_BATCHES", "c301001004_000001", "my theme"])
def test_a_theme_named_like_the_sinks_own_or_a_class_table_or_no_plain_name_is_refused(
    catalogue: Catalogue, name: str
) -> None:
    """Its table would be another's: the offsets (the sink crashes on it), or a class's own rows mixed with it."""
    with pytest.raises(ThemeInvalid, match="name"):
        plan_placements(catalogue, list(catalogue.data_classes), {name: [ENTERPRISE, PENALTY]})


def test_a_class_in_two_themes_is_refused(catalogue: Catalogue) -> None:
    themes = {"enterprise": [ENTERPRISE, PENALTY], "penalties": [PENALTY, ENTERPRISE]}
    with pytest.raises(ThemeInvalid, match="in two themes"):
        plan_placements(catalogue, list(catalogue.data_classes), themes)


def test_offsets_never_pass_an_open_batch_part() -> None:
    book = OffsetBook()
    book.read((TOPIC, 0, 0))
    book.hold((TOPIC, 0, 1))
    book.read((TOPIC, 0, 2))
    assert book.to_store() == {(TOPIC, 0): 1}
    book.release([(TOPIC, 0, 1)])
    assert book.to_store() == {(TOPIC, 0): 3}
    assert book.to_store() == {}


def test_upserts_by_key_tombstones_delete_and_offsets_land_with_rows(db_url: str, catalogue: Catalogue) -> None:
    feed, schema = Feed(), schema_of(catalogue, ENTERPRISE, 1)
    for seq in range(5):
        feed.add(ENTERPRISE, f"U{seq}", enterprise(seq), schema)
    feed.add(ENTERPRISE, "U1", enterprise(1, name="renamed"), schema)
    feed.add(ENTERPRISE, "U2", None, None)  # tombstone
    s, _ = sink(db_url, catalogue, feed)
    drain(s)
    rows = {r["uscc"]: r for r in s.store.rows(class_table(ENTERPRISE))}
    assert sorted(rows) == ["U0", "U1", "U3", "U4"]
    assert rows["U1"]["name"] == "renamed"
    assert rows["U1"]["_record_id"] == "r5"
    assert rows["U1"]["_grant_id"] == "g1"
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 7}]
    s.close()
    # A restart reads from the database's offsets: the reader is asked to start at 7.
    again, reader = sink(db_url, catalogue, feed)
    assert reader.start == {(TOPIC, 0): 7}
    again.close()


def test_a_new_field_adds_a_column_and_an_incompatible_schema_stops_only_its_class(
    db_url: str, catalogue: Catalogue
) -> None:
    feed = Feed()
    narrow, wide = schema_of(catalogue, ENTERPRISE, 1, drop=("note",)), schema_of(catalogue, ENTERPRISE, 2)
    feed.add(ENTERPRISE, "U0", {k: v for k, v in enterprise(0).items() if k != "note"}, narrow)
    feed.add(ENTERPRISE, "U1", enterprise(1, note="new column"), wide)
    penalty = schema_of(catalogue, PENALTY, 3)
    feed.add(PENALTY, "P0", {"uscc": "P0", "person_id_number": "x", "amount": 1.0, "seq": 0}, penalty)
    broken = json.loads(json.dumps(penalty.document))
    broken["fields"] = [{**f, "type": "string"} if f["name"] == "amount" else f for f in broken["fields"]]
    feed.add(
        PENALTY,
        "P1",
        {"uscc": "P1", "person_id_number": "x", "amount": "masked", "seq": 1},
        WriterSchema(4, broken, None),
    )
    feed.add(ENTERPRISE, "U2", enterprise(2), wide)
    feed.add(PENALTY, "P2", {"uscc": "P2", "person_id_number": "x", "amount": 2.0, "seq": 2}, penalty)
    s, _ = sink(db_url, catalogue, feed)
    drain(s)
    rows = {r["uscc"]: r for r in s.store.rows(class_table(ENTERPRISE))}
    assert sorted(rows) == ["U0", "U1", "U2"]
    assert rows["U0"]["note"] is None
    assert rows["U1"]["note"] == "new column"
    assert [r["uscc"] for r in s.store.rows(class_table(PENALTY))] == ["P0"]  # stopped at P1
    assert "'amount' holds double values" in s.stopped[PENALTY]
    assert [(r["data_class"], r["state"]) for r in s.store.rows("sharebus_classes")] == [(PENALTY, "stopped")]
    s.close()
    again, _ = sink(db_url, catalogue, feed)  # stays stopped across a restart
    assert PENALTY in again.stopped
    again.close()


def test_a_class_stopped_in_a_transaction_that_never_committed_is_not_stopped_after_a_restart(
    db_url: str, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop is written with the transaction whose record stopped the class: a crash before its COMMIT
    reads the class's earlier records of that transaction again, and lands them (they were compatible)."""
    feed, penalty = Feed(), schema_of(catalogue, PENALTY, 3)
    feed.add(PENALTY, "P0", {"uscc": "P0", "person_id_number": "x", "amount": 1.0, "seq": 0}, penalty)
    broken = json.loads(json.dumps(penalty.document))
    broken["fields"] = [{**f, "type": "string"} if f["name"] == "amount" else f for f in broken["fields"]]
    value = {"uscc": "P1", "person_id_number": "x", "amount": "masked", "seq": 1}
    feed.add(PENALTY, "P1", value, WriterSchema(4, broken, None))
    s, _ = sink(db_url, catalogue, feed, max_wait_ms=10_000)  # both records in one transaction

    def killed(_unit: Unit) -> None:
        raise RuntimeError("killed before COMMIT")

    monkeypatch.setattr(s.store, "apply", killed)
    with pytest.raises(RuntimeError):
        s.step()
    s.close()
    again, _ = sink(db_url, catalogue, feed)
    assert PENALTY not in again.stopped
    drain(again)
    assert [r["uscc"] for r in again.store.rows(class_table(PENALTY))] == ["P0"]
    assert [(r["data_class"], r["state"]) for r in again.store.rows("sharebus_classes")] == [(PENALTY, "stopped")]
    again.close()


def test_a_theme_table_merges_two_classes_by_key(db_url: str, catalogue: Catalogue) -> None:
    feed = Feed()
    feed.add(ENTERPRISE, "K1", enterprise(1, uscc="K1"), schema_of(catalogue, ENTERPRISE, 1))
    penalty = schema_of(catalogue, PENALTY, 2)
    feed.add(PENALTY, "K1", {"uscc": "K1", "person_id_number": "x", "amount": 5.0, "seq": 7}, penalty)
    feed.add(PENALTY, "K2", {"uscc": "K2", "person_id_number": "y", "amount": 6.0, "seq": 8}, penalty)
    s, _ = sink(db_url, catalogue, feed, themes={"enterprise": [ENTERPRISE, PENALTY]})
    drain(s)
    rows = {r["uscc"]: r for r in s.store.rows("enterprise")}
    assert sorted(rows) == ["K1", "K2"]
    assert rows["K1"]["name"] == "n"
    assert rows["K1"]["c301001001_000001_seq"] == 1
    assert rows["K1"]["c301001002_000001_seq"] == 7
    assert rows["K1"]["amount"] == 5.0
    assert rows["K2"]["name"] is None
    s.close()


def test_a_grant_that_withholds_the_key_lands_every_record_keyed_by_its_record_id(
    db_url: str, catalogue: Catalogue
) -> None:
    """The bus withholds the record key where the grant leaves out or masks the key field: two such records
    must not collapse into one row (nor fail NOT NULL), and a masked key (shared by many) must not key rows."""
    feed = Feed()
    left_out = schema_of(catalogue, ENTERPRISE, 1, drop=("uscc",))
    for seq in range(2):
        value = {k: v for k, v in enterprise(seq).items() if k != "uscc"}
        feed.add(ENTERPRISE, None, value, left_out, key_withheld="uscc")
    masked = schema_of(catalogue, PENALTY, 2)
    for seq in range(2):
        value = {"uscc": "****0001", "person_id_number": "x", "amount": 1.0, "seq": seq}
        feed.add(PENALTY, None, value, masked, key_withheld="uscc")
    s, _ = sink(db_url, catalogue, feed)
    drain(s)
    assert sorted((r["uscc"], r["seq"]) for r in s.store.rows(class_table(ENTERPRISE))) == [("r0", 0), ("r1", 1)]
    assert sorted((r["uscc"], r["seq"]) for r in s.store.rows(class_table(PENALTY))) == [("r2", 0), ("r3", 1)]
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 4}]
    s.close()


class Grants:
    """The gateway's answer about the system's grants, as GrantWatch gives it."""

    def __init__(self, ended: set[str], active: set[str], ended_grants: set[str]) -> None:
        self.standing = GrantStanding(ended, active, ended_grants)

    def ended_classes(self) -> GrantStanding:
        return self.standing

    def close(self) -> None:
        pass


def test_a_record_under_a_grant_approved_since_the_last_poll_lands_and_lands_its_class_again(
    db_url: str, catalogue: Catalogue
) -> None:
    """The router delivers under a new grant at once; the sink polls the gateway every few seconds. A record
    under the ended grant (still in the topic) is not landed, one under the new grant is not lost."""
    feed, schema = Feed(), schema_of(catalogue, ENTERPRISE, 1)
    feed.add(ENTERPRISE, "U0", enterprise(0), schema)  # under g1, delivered before its revocation
    feed.add(ENTERPRISE, "U1", enterprise(1), schema)
    feed.items[-1] = dataclasses.replace(feed.items[-1], grant_id="g2")  # the new grant
    s, _ = sink(db_url, catalogue, feed)
    s.grants = Grants({ENTERPRISE}, set(), {"g1"})  # type: ignore[assignment]
    s.check_grants()
    assert ENTERPRISE in s.revoked
    drain(s)
    assert [r["uscc"] for r in s.store.rows(class_table(ENTERPRISE))] == ["U1"]
    assert ENTERPRISE not in s.revoked
    assert s.store.rows("sharebus_classes") == []
    s.close()


class Unanswered:
    """A gateway that is restarting: its first answer fails, its second comes."""

    def __init__(self, then: Grants) -> None:
        self.then, self.asked = then, 0

    def ended_classes(self) -> GrantStanding:
        self.asked += 1
        if self.asked == 1:
            raise LandError("the gateway did not list tax-levy's grants: connection refused")
        return self.then.ended_classes()

    def close(self) -> None:
        pass


def test_a_grant_poll_the_gateway_does_not_answer_is_tried_again_and_landing_goes_on(
    db_url: str, catalogue: Catalogue
) -> None:
    """A gateway restart must not end the sink (nothing is landed until someone restarts it): the router
    delivers nothing under an ended grant, so the poll only waits for the next one."""
    feed, schema = Feed(), schema_of(catalogue, ENTERPRISE, 1)
    feed.add(ENTERPRISE, "U0", enterprise(0), schema)
    s, _ = sink(db_url, catalogue, feed, grant_poll_s=0.001)
    s.grants = Unanswered(Grants({ENTERPRISE}, set(), {"g1"}))  # type: ignore[assignment]
    s.check_grants()
    drain(s)
    assert [r["uscc"] for r in s.store.rows(class_table(ENTERPRISE))] == ["U0"]
    time.sleep(0.002)
    s.check_grants()  # answered now: the revocation is applied
    assert ENTERPRISE in s.revoked
    s.close()


def batch_info(seq: int | None, count: int) -> BatchInfo:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return BatchInfo("b1", start, start + dt.timedelta(days=1), count, seq)


def test_a_batch_lands_in_one_transaction_and_only_when_whole(db_url: str, catalogue: Catalogue) -> None:
    feed, schema = Feed(), schema_of(catalogue, STATS, 1)
    for seq in range(3):
        feed.add(STATS, f"D{seq}", {"district_code": f"D{seq}", "issued": seq, "seq": seq}, schema, batch_info(seq, 3))
    s, reader = sink(db_url, catalogue, feed, max_records=1)
    for _ in range(3):
        s.step()
    # Every part read, no end marker yet: nothing landed, and the offset stays at the batch's first part.
    assert not s.store.rows("sharebus_batches")
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 0}]
    feed.add(STATS, "", None, None, batch_info(None, 3))
    reader.items.append(feed.items[-1])
    drain(s)
    assert sorted(r["district_code"] for r in s.store.rows(class_table(STATS))) == ["D0", "D1", "D2"]
    assert [(b["batch_id"], b["records"]) for b in s.store.rows("sharebus_batches")] == [("b1", 3)]
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 4}]
    s.close()


def test_a_batch_of_a_stopped_class_is_not_recorded_or_counted_as_landed(db_url: str, catalogue: Catalogue) -> None:
    """sharebus_batches and sharebus_land_batches_total say "landed whole": not of a window whose rows were skipped."""
    feed, schema = Feed(), schema_of(catalogue, STATS, 1)
    for seq in range(2):
        feed.add(STATS, f"D{seq}", {"district_code": f"D{seq}", "issued": seq, "seq": seq}, schema, batch_info(seq, 2))
    feed.add(STATS, "", None, None, batch_info(None, 2))
    s, _ = sink(db_url, catalogue, feed)
    s.stopped[STATS] = "stopped by an earlier schema"
    drain(s)
    assert s.store.rows("sharebus_batches") == []
    assert s.metrics.registry.get_sample_value("sharebus_land_batches_total", {"data_class": STATS}) is None
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 3}]
    s.close()


def test_plan_shows_create_table_ddl(tmp_path: Path, catalogue: Catalogue) -> None:
    store = LandStore(f"sqlite:///{tmp_path / 'plan.db'}")
    placements = plan_placements(catalogue, [ENTERPRISE], {})
    shape = ClassShape.from_schema(ENTERPRISE, "uscc", json.loads(catalogue.schema(ENTERPRISE).text))
    ddl = store.ddl(placements[ENTERPRISE], shape)
    assert len(ddl) == 1
    assert ddl[0].startswith("CREATE TABLE c301001001_000001")
    assert "uscc TEXT NOT NULL" in ddl[0]
    assert "PRIMARY KEY (uscc)" in ddl[0]
    assert not store.count_tables()  # nothing applied
    store.dispose()


def test_a_table_whose_columns_were_not_recorded_is_not_left_behind(tmp_path: Path, catalogue: Catalogue) -> None:
    # Killed between creating a class's table and recording its columns, the sink restarted into "table
    # already exists" for good: SQLite's driver ran the CREATE TABLE outside the transaction.
    store = LandStore(f"sqlite:///{tmp_path / 'land.db'}")
    store.open()
    placement = plan_placements(catalogue, [ENTERPRISE], {})[ENTERPRISE]
    shape = ClassShape.from_schema(ENTERPRISE, "uscc", json.loads(catalogue.schema(ENTERPRISE).text))
    recorded = store.control["columns"]
    # The record of the new columns fails after the table was created, as a kill there would leave it.
    store.control["columns"] = sa.Table("not_there", sa.MetaData(), *(sa.Column(c.name, c.type) for c in recorded.c))
    with pytest.raises(sa.exc.OperationalError, match="not_there"):
        store.ensure(placement, shape)
    assert class_table(ENTERPRISE) not in sa.inspect(store.engine).get_table_names()
    store.control["columns"] = recorded
    assert store.ensure(placement, shape)[0].startswith("CREATE TABLE")
    assert class_table(ENTERPRISE) in sa.inspect(store.engine).get_table_names()
    store.dispose()


def test_once_lands_what_is_there_and_returns(db_url: str, catalogue: Catalogue) -> None:
    feed, schema = Feed(), schema_of(catalogue, ENTERPRISE, 1)
    for seq in range(3):
        feed.add(ENTERPRISE, f"U{seq}", enterprise(seq), schema)
    s, _ = sink(db_url, catalogue, feed)
    lines: list[str] = []
    s.run(once=True, report=lines.append)
    assert s.store.count(class_table(ENTERPRISE)) == 3
    assert "rows        3" in lines[-1]
    s.close()


@pytest.mark.parametrize(
    ("overrides", "code", "said"),
    [
        ({"themes": {"enterprise": []}}, 2, "theme 'enterprise'"),
        ({"database_url": "nosuch:///land.db"}, 2, "not a database URL"),
        ({"database_url": "postgresql://loader:secret@127.0.0.1:9/pool"}, 6, "cannot open the database"),
    ],
)
def test_a_setting_that_cannot_work_is_named_with_an_exit_code_not_a_traceback(
    overrides: dict[str, Any], code: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sharebus_land.__main__ import run

    settings = LandSettings(system="tax-levy", catalogue_dir=CATALOGUE, **overrides)
    assert run(settings, show_plan=True) == code
    err = capsys.readouterr().err
    assert said in err
    assert "secret" not in err


class Unconsumed:
    """librdkafka's consumer before the first message of each partition: position -1001 (invalid)."""

    def __init__(self, watermarks: dict[int, tuple[int, int]]) -> None:
        self.watermarks = watermarks

    def position(self, partitions: list[Any]) -> list[Any]:
        return [type("TP", (), {"partition": tp.partition, "offset": -1001})() for tp in partitions]

    def get_watermark_offsets(self, tp: Any, timeout: float | None = None, cached: bool = False) -> tuple[int, int]:
        return self.watermarks[tp.partition]


def test_once_ends_when_a_partition_has_nothing_new_since_the_database_offset_or_only_expired_records() -> None:
    """Partition 0: the last run landed up to 3, its end. Partition 1: retention emptied it (first 5, end 5).
    Partition 2: two records not read yet. Only partition 2 keeps ``--once`` (and the lag) waiting."""
    reader = object.__new__(DeliveryReader)
    reader.topic, reader.partitions = TOPIC, [0, 1, 2]
    reader._start = {0: 3, 1: -2, 2: 7}  # -2: OFFSET_BEGINNING, no offset in the database
    reader._next, reader._checked, reader._on_lost = {0: 3, 2: 7}, True, None
    reader._consumer = Unconsumed({0: (0, 3), 1: (5, 5), 2: (0, 9)})  # type: ignore[assignment]
    assert reader.positions() == {0: 3, 1: 5, 2: 7}
    assert reader.lag() == {0: 0, 1: 0, 2: 2}
