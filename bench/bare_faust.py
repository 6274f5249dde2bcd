"""Faust's own ceiling: the router's app settings and send path, with no rules, Avro or counting."""

from __future__ import annotations

import os

import faust

from sharebus_router.app import faust_app_settings, make_worker
from sharebus_router.settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
    source, sink = os.environ["BENCH_SOURCE"], os.environ["BENCH_SINK"]
    app = faust.App(os.environ["BENCH_APP_ID"], **faust_app_settings(settings))
    topic = app.topic(source, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(topic, name="forward")
    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            # The same primitive the router uses: enqueue on the shared producer, flushed before commit.
            await app.producer.send(sink, message.key, message.value, None, None, list(message.headers))

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    make_worker(app, "warning").execute_from_commandline()


if __name__ == "__main__":
    main()
