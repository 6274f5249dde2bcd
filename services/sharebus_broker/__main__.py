"""``python -m sharebus_broker fetch|run|compose-config``: resolve the jars, run the local cluster until
Ctrl-C (``SHAREBUS_BROKERS`` nodes), or write docker-compose.yml's broker configs (compose.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sharebus_broker.compose import write_compose_cluster
from sharebus_broker.jars import JarResolutionError, resolve_jars
from sharebus_broker.launcher import BrokerStartError, KafkaBroker
from sharebus_broker.settings import BrokerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharebus_broker")
    parser.add_argument("command", choices=["fetch", "run", "compose-config"])
    parser.add_argument("--dir", type=Path, default=Path("/sharebus/kafka"), help="compose-config: the CA's dir")
    parser.add_argument("--hosts", default="kafka-1,kafka-2,kafka-3", help="compose-config: the brokers' host names")
    parser.add_argument(
        "--nodes-dir", type=Path, default=Path("/sharebus/brokers"), help="compose-config: <dir>/<host>"
    )
    parser.add_argument("--admin-dir", type=Path, default=Path("/sharebus/admin"), help="compose-config: for bus-init")
    parser.add_argument("--broker-uid", type=int, default=None, help="compose-config: the uid the brokers run as")
    args = parser.parse_args(argv)
    if args.command == "compose-config":
        hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
        for script in write_compose_cluster(args.dir, hosts, args.nodes_dir, args.admin_dir, args.broker_uid):
            print(script)
        return 0
    settings = BrokerSettings()
    try:
        if args.command == "fetch":
            print(resolve_jars(settings))
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        with KafkaBroker(settings) as broker:
            print(f"sharebus: broker ready on {broker.bootstrap}; Ctrl-C stops it", flush=True)
            while not stop.wait(1.0):
                if not broker.is_running():
                    print(f"sharebus: the broker died; see {broker.log_path}", file=sys.stderr)
                    return 1
    except (BrokerStartError, JarResolutionError) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
