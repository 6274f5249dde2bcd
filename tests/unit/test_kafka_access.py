"""Which listener a client of the bus reaches: the client listener, or the router's (``streaming``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_router.app import faust_app_settings
from sharebus_router.settings import RouterSettings

SECURED = KafkaAccess(
    bootstrap="127.0.0.1:9093",
    stream_bootstrap="127.0.0.1:9095,127.0.0.1:9096",
    username="ns.router",
    password=SecretStr("s3cret"),
    ca_file=Path(__file__),  # any readable file: client_config only checks that it is one
)


def test_streaming_is_the_same_principal_on_the_listener_that_does_not_force_re_authentication() -> None:
    streaming = SECURED.streaming()

    config = streaming.client_config()
    assert config["bootstrap.servers"] == "127.0.0.1:9095,127.0.0.1:9096"
    assert config["sasl.username"] == "ns.router"
    assert config["sasl.password"] == "s3cret"
    assert config["security.protocol"] == "SASL_SSL"
    # Everything else is the client listener's access unchanged.
    assert streaming.model_copy(update={"bootstrap": SECURED.bootstrap}) == SECURED


def test_without_a_stream_listener_streaming_is_the_access_itself() -> None:
    plain = KafkaAccess(bootstrap="127.0.0.1:9092", security_protocol="PLAINTEXT")

    assert plain.streaming() is plain
    assert SECURED.model_copy(update={"stream_bootstrap": None}).streaming().bootstrap == "127.0.0.1:9093"


def test_every_client_of_the_router_is_on_the_stream_listener() -> None:
    settings = RouterSettings(**SECURED.settings_fields())

    assert settings.kafka == SECURED.streaming()
    # Faust's clients too (plaintext here: its TLS context would need a real CA file).
    plain = KafkaAccess(bootstrap="127.0.0.1:9092", stream_bootstrap="127.0.0.1:9094", security_protocol="PLAINTEXT")
    faust = faust_app_settings(RouterSettings(**plain.settings_fields(), topic_replication_factor=1))
    assert faust["broker"] == ["kafka://127.0.0.1:9094"]
    # Only the router's: any other service of the bus stays on the client listener.
    assert BusSettings(**SECURED.settings_fields()).kafka == SECURED
