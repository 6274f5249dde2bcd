"""Plausible records for any data class, driven by its Avro schema and its field names."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sharebus_core.catalogue import AvroSchema
from sharebus_rules.check_digits import USCC_CHARSET, resident_id_check_char, uscc_check_char

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国"
_DISTRICTS = ("500101", "500102", "500103", "500104", "500105", "500106", "500107", "500108", "500112")
_DISTRICT_NAMES = ("渝中区", "江北区", "沙坪坝区", "九龙坡区", "南岸区", "北碚区", "渝北区", "巴南区", "万州区")
_ORG_WORDS = ("山城", "嘉陵", "长江", "两江", "巴渝", "缙云", "朝天门", "解放碑")
_PERSON_FIELDS = ("legal_rep_name", "student_name", "operator_name", "person_name", "patient_name", "holder_name")


class RecordFaker:
    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not security
        self.serial = 0

    def uscc(self) -> str:
        body = "91" + self.rng.choice(_DISTRICTS) + "".join(self.rng.choice(USCC_CHARSET) for _ in range(9))
        return body + uscc_check_char(body)

    def resident_id(self) -> str:
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randrange(0, 365 * 55))
        body = f"{self.rng.choice(_DISTRICTS)}{birth:%Y%m%d}{self.rng.randrange(0, 1000):03d}"
        return body + resident_id_check_char(body)

    def person(self) -> str:
        return self.rng.choice(_SURNAMES) + "".join(self.rng.choice(_GIVEN) for _ in range(self.rng.choice((1, 2))))

    def organisation(self) -> str:
        return f"重庆{self.rng.choice(_ORG_WORDS)}{self.rng.choice(('科技', '建设', '商贸', '物流', '食品'))}有限公司"

    def record(self, schema: AvroSchema) -> dict[str, Any]:
        self.serial += 1
        return {name: self.value(name, avro_type) for name, avro_type in schema.field_types.items()}

    def value(self, name: str, avro_type: Any) -> Any:
        if isinstance(avro_type, list):
            branches = [t for t in avro_type if t != "null"]
            if ("null" in avro_type and self.rng.random() < 0.2) or not branches:
                return None
            return self.value(name, branches[0])
        if isinstance(avro_type, dict):
            logical = avro_type.get("logicalType")
            if logical == "date":
                return dt.date(2015, 1, 1) + dt.timedelta(days=self.rng.randrange(0, 4000))
            if logical in ("timestamp-millis", "timestamp-micros"):
                return dt.datetime.now(dt.UTC)
            if avro_type.get("type") == "enum":
                return self.rng.choice(avro_type["symbols"])
            return self.value(name, avro_type.get("type"))
        return self._primitive(name, avro_type)

    def _primitive(self, name: str, avro_type: Any) -> Any:
        if avro_type == "string":
            return self._string(name)
        if avro_type in ("int", "long"):
            return self.rng.randrange(0, 1000)
        if avro_type in ("double", "float"):
            if name == "latitude":
                return round(29.3 + self.rng.random() * 0.5, 6)
            if name == "longitude":
                return round(106.3 + self.rng.random() * 0.4, 6)
            return round(self.rng.random() * 1000, 2)
        if avro_type == "boolean":
            return self.rng.random() < 0.5
        if avro_type == "bytes":
            return b""
        return None

    def _string(self, name: str) -> str:
        if "uscc" in name:
            return self.uscc()
        if "id_number" in name:
            return self.resident_id()
        if name in _PERSON_FIELDS or name == "name":
            return self.person()
        if name.endswith("_name") and any(
            w in name for w in ("enterprise", "institution", "unit", "taxpayer", "subject", "school")
        ):
            return self.organisation()
        if name.endswith("district_code"):
            return self.rng.choice(_DISTRICTS)
        if name == "gender":
            return self.rng.choice(("1", "2"))
        if name == "status":
            return self.rng.choice(("active", "active", "active", "changed"))
        if "address" in name:
            return f"重庆市{self.rng.choice(_DISTRICT_NAMES)}{self.rng.randrange(1, 300)}号"
        return f"{name}-{self.serial:08d}"
