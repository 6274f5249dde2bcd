"""Publishes a record whose header name is not UTF-8, as a client in C (kcat, librdkafka) can.

confluent-kafka's Python producer takes header names as ``str`` only, so this goes to the librdkafka that
confluent-kafka ships, through ctypes, with the same settings (and credential) as ``KafkaAccess``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import confluent_kafka

from sharebus_core.kafka import KafkaAccess

# rd_kafka_vtype_t and RD_KAFKA_MSG_F_COPY (librdkafka's rdkafka.h).
_TOPIC, _VALUE, _KEY, _MSGFLAGS, _HEADER = 1, 4, 5, 7, 9
_F_COPY = 0x2


class _Mem(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Header(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]


class _U(ctypes.Union):
    _fields_ = [
        ("cstr", ctypes.c_char_p),
        ("i", ctypes.c_int),
        ("mem", _Mem),
        ("header", _Header),
        ("pad", ctypes.c_char * 64),
    ]


class _VU(ctypes.Structure):
    _fields_ = [("vtype", ctypes.c_int), ("u", _U)]


def _librdkafka() -> ctypes.CDLL:
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    [path] = sorted(libs.glob("librdkafka-*.so*"))
    lib = ctypes.CDLL(str(path))
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_produceva.restype = ctypes.c_void_p
    lib.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.rd_kafka_error_string.restype = ctypes.c_char_p
    lib.rd_kafka_error_string.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_outq_len.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


def produce_raw_header(access: KafkaAccess, topic: str, key: bytes, value: bytes, name: bytes, header: bytes) -> None:
    """One record with one header named ``name`` (any bytes), acknowledged by the broker before returning."""
    lib = _librdkafka()
    conf = lib.rd_kafka_conf_new()
    error = ctypes.create_string_buffer(512)
    settings = {**access.client_config(), "acks": "all"}
    for setting, setting_value in settings.items():
        text = str(setting_value).lower() if isinstance(setting_value, bool) else str(setting_value)
        if lib.rd_kafka_conf_set(conf, setting.encode(), text.encode(), error, len(error)) != 0:
            raise AssertionError(f"{setting}: {error.value.decode()}")
    producer = lib.rd_kafka_new(0, conf, error, len(error))  # RD_KAFKA_PRODUCER; takes the conf
    assert producer, error.value.decode()
    try:
        parts = (_VU * 5)()
        parts[0].vtype, parts[0].u.cstr = _TOPIC, topic.encode()
        parts[1].vtype, parts[1].u.i = _MSGFLAGS, _F_COPY
        parts[2].vtype, parts[2].u.mem = _KEY, _Mem(ctypes.cast(ctypes.c_char_p(key), ctypes.c_void_p), len(key))
        parts[3].vtype, parts[3].u.mem = _VALUE, _Mem(ctypes.cast(ctypes.c_char_p(value), ctypes.c_void_p), len(value))
        kept = ctypes.create_string_buffer(header, len(header))
        parts[4].vtype = _HEADER
        parts[4].u.header = _Header(name, ctypes.cast(kept, ctypes.c_void_p), len(header))
        failed = lib.rd_kafka_produceva(producer, parts, len(parts))
        assert not failed, lib.rd_kafka_error_string(failed).decode()
        lib.rd_kafka_flush(producer, 30_000)
        assert lib.rd_kafka_outq_len(producer) == 0, "the record was not acknowledged within 30 s"
    finally:
        lib.rd_kafka_destroy(producer)
