"""``python -m sharebus_registry``: replay the schema log, then serve the REST API until SIGTERM/SIGINT.

The HTTP port is bound only once the log has been read up to its end, so "the port answers" means
"the registry is ready and its answers reflect the log".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web
from pydantic import ValidationError

from sharebus_core.errors import SharebusError
from sharebus_registry.api import create_app
from sharebus_registry.api_auth import RegistryGuard
from sharebus_registry.auth import Authenticator, RegistryPolicy
from sharebus_registry.errors import RegistryError
from sharebus_registry.kafka_auth import KafkaCredentialVerifier
from sharebus_registry.kafka_log import KafkaSchemaLog
from sharebus_registry.settings import RegistrySettings
from sharebus_registry.state import RegistryState
from sharebus_registry.store import SchemaStore

log = logging.getLogger("sharebus_registry")

_STARTUP_TIMEOUT_S = 60.0


class StartupFailed(SharebusError):
    pass


async def serve(settings: RegistrySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    state = RegistryState(settings.first_id)
    schema_log = KafkaSchemaLog(settings.kafka, settings.topic, state)
    try:
        if not await _open_unless_stopped(schema_log, stop):
            return
        app = create_app(SchemaStore(state, schema_log), guard=make_guard(settings))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            try:
                await site.start()
            except OSError as exc:
                raise StartupFailed(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
            port = runner.addresses[0][1] if runner.addresses else settings.port
            print(
                f"sharebus-registry: listening on http://{settings.host}:{port} (topic {settings.topic})",
                flush=True,
            )
            await stop.wait()
            log.info("stopping")
        finally:
            await runner.cleanup()
    finally:
        await asyncio.to_thread(schema_log.close)


def make_guard(settings: RegistrySettings) -> RegistryGuard | None:
    """Every call authenticated with the caller's Kafka credential; none in the plaintext debugging mode."""
    access = settings.kafka
    if not access.secured:
        log.warning(
            "PLAINTEXT mode: the registry does NOT authenticate anyone; any caller may register and delete schemas"
        )
        return None
    authenticator = Authenticator(
        KafkaCredentialVerifier(access, settings.auth_verify_timeout_s),
        ttl_s=settings.auth_cache_ttl_s,
        failure_delay_s=settings.auth_failure_delay_s,
    )
    log.info("writers: %s", ", ".join(sorted(settings.writers)))
    return RegistryGuard(authenticator, RegistryPolicy.of(settings.writers))


async def _open_unless_stopped(schema_log: KafkaSchemaLog, stop: asyncio.Event) -> bool:
    """Replays the log; False when a signal arrived first (the replay is then abandoned)."""
    opening = asyncio.ensure_future(asyncio.to_thread(schema_log.open, _STARTUP_TIMEOUT_S))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([opening, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not opening.done():
        schema_log.abort()
        with contextlib.suppress(RegistryError):
            await opening
        log.info("stopped before the log was replayed")
        return False
    try:
        replayed = opening.result()
    except RegistryError as exc:
        raise StartupFailed(exc.message) from exc
    log.info("replayed %d offsets of %s", replayed, schema_log.topic)
    return True


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = RegistrySettings()
    except ValidationError as exc:
        print(f"sharebus-registry: invalid settings: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        asyncio.run(serve(settings))
    except StartupFailed as exc:
        print(f"sharebus-registry: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
