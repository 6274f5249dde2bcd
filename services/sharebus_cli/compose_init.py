"""``python -m sharebus_cli.compose_init``: docker-compose.yml's ``bus-init`` service.

Runs the project's own provisioning, as ``sharebus run`` does, once the brokers are up: a principal
(SCRAM credential) per service and the namespace's ACLs, the control plane's and the auditor's key
pairs. Each service then gets an env file (``/sharebus/env/<service>.env``) naming its own credential
file, the CA and the keys it may hold; its container sources that file before starting. The admin's
credential goes only to the ACL reconciler, as in ``sharebus run``. Idempotent: keys are kept, and
service passwords are issued afresh (every service reads its file at start).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sharebus_access.credentials import provision_access
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess, read_credentials_file, write_credentials_file
from sharebus_core.key_files import BusKeys, bus_keys
from sharebus_core.principals import ADMIN_USER, Service
from sharebus_core.settings import BusSettings

# The containers of docker-compose.yml and the principal each runs as.
CONTAINERS: dict[str, Service] = {
    "registry": "registry",
    "router": "router",
    "auditor": "auditor",
    "gateway": "gateway",
    "monitor": "monitor",
    "portal": "portal",
    "operator": "operator",
}


def _env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"export {k}='{v}'\n" for k, v in values.items()))


def _keys_for(service: str, keys: BusKeys) -> dict[str, str]:
    extra = {**keys.everyone}
    if service in ("gateway", "portal", "operator"):
        extra.update(keys.control_writer)
    if service == "auditor":
        extra.update(keys.auditor)
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharebus_cli.compose_init")
    parser.add_argument("--dir", type=Path, default=Path("/sharebus"))
    args = parser.parse_args(argv)
    settings = BusSettings()
    kafka_dir: Path = args.dir / "kafka"
    stored = read_credentials_file(kafka_dir / "credentials" / f"{ADMIN_USER}.json")
    ca_file = kafka_dir / "tls" / "ca.pem"
    admin = KafkaAccess(
        bootstrap=settings.bootstrap_servers,
        stream_bootstrap=settings.kafka_stream_bootstrap,
        username=stored.username,
        password=stored.password,
        ca_file=ca_file,
    )
    catalogue = load_catalogue(settings.catalogue_dir)
    services = provision_access(admin, catalogue, settings.namespace)
    keys = bus_keys(args.dir / "keys")
    for container, service in CONTAINERS.items():
        credentials = args.dir / "credentials" / f"{service}.json"
        write_credentials_file(credentials, services[service])
        env = {"SHAREBUS_KAFKA_CREDENTIALS_FILE": str(credentials), "SHAREBUS_KAFKA_CA_FILE": str(ca_file)}
        _env_file(args.dir / "env" / f"{container}.env", {**env, **_keys_for(service, keys)})
    admin_env = {
        "SHAREBUS_KAFKA_CREDENTIALS_FILE": str(kafka_dir / "credentials" / f"{ADMIN_USER}.json"),
        "SHAREBUS_KAFKA_CA_FILE": str(ca_file),
    }
    _env_file(args.dir / "env" / "access.env", {**admin_env, **keys.everyone})
    print(f"sharebus: {len(services)} service principals and the ACLs of {settings.namespace} provisioned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
