"""``python -m sharebus_cli.compose_init``: docker-compose.yml's ``bus-init`` service.

Runs the project's own provisioning, as ``sharebus run`` does, once the brokers are up: a principal
(SCRAM credential) per service and the namespace's ACLs, the control plane's and the auditor's key
pairs. Each service has its own volume, mounted here at ``<dir>/<service>`` and read-only in that
service's container only; it gets its credential, the CA certificate, the keys it may hold (private
keys only to their holders) and an env file naming them, all owned by the uid the service runs as
(``SERVICE_UIDS``, the ``user:`` of its containers) and readable by it alone. The super user's
credential goes only to the ACL reconciler (``access``), as in ``sharebus run``; the key pairs stay
in bus-init's own volume. The bus's scrape token (``/metrics`` answers only it) is made once beside the
keys; every service gets a copy (``SHAREBUS_SCRAPE_TOKEN_FILE``), and Prometheus's own volume
(``<dir>/prometheus``, owned by its uid) gets the one it scrapes with.

Idempotent: keys are kept, and a service's password is issued only when it has no credential yet (no
file, or its user is gone from the cluster): re-running ``docker compose up`` must not change the
password of a service that is running.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from sharebus_access.credentials import ScramUsers, provision_access
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess, read_credentials_file, write_credentials_file
from sharebus_core.key_files import BusKeys, bus_keys
from sharebus_core.principals import ADMIN_USER, Principals, Service
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, ensure_scrape_token
from sharebus_core.settings import BusSettings

# Each service's principal and the uid its containers run as (docker-compose.yml's `user:`; the
# Dockerfile makes the data directories of the router, the gateway and the portal theirs). Both router workers
# are one principal. "access" is the ACL reconciler: it runs as the super user.
SERVICE_UIDS: dict[str, int] = {
    "registry": 10001,
    "router": 10002,
    "auditor": 10003,
    "gateway": 10004,
    "monitor": 10005,
    "operator": 10006,
    "access": 10007,
    "portal": 10008,
}
PRINCIPALS: dict[str, Service] = {
    "registry": "registry",
    "router": "router",
    "auditor": "auditor",
    "gateway": "gateway",
    "monitor": "monitor",
    "operator": "operator",
    "portal": "portal",
}
CREDENTIALS_FILE, CA_FILE, ENV_FILE = "credentials.json", "ca.pem", "env"
# Prometheus's uid (docker-compose.yml's `user:` of prometheus) and the token file it reads.
PROMETHEUS_UID, SCRAPE_TOKEN_FILE = 65534, "scrape-token"


def _owned(path: Path, uid: int | None, mode: int) -> None:
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, uid)


def _env_file(path: Path, values: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"export {k}='{v}'\n" for k, v in values.items()))


def keys_for(service: str, keys: BusKeys) -> dict[str, str]:
    extra = {**keys.everyone}
    # The portal signs the grant decisions officials make in it, as the gateway signs departments'.
    if service in ("gateway", "operator", "portal"):
        extra.update(keys.control_writer)
    if service == "auditor":
        extra.update(keys.auditor)
    return extra


def write_prometheus_token(directory: Path, token: Path, owner: bool) -> Path:
    """Prometheus's volume (``directory/prometheus``): the scrape token alone, 0600, owned by its uid."""
    uid = PROMETHEUS_UID if owner else None
    home = directory / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    _owned(home, uid, 0o700)
    target = home / SCRAPE_TOKEN_FILE
    shutil.copyfile(token, target)
    _owned(target, uid, 0o600)
    return target


def kept_credentials(directory: Path, principals: Principals, known_users: set[str]) -> set[Service]:
    """The services whose credential file names their user and whose SCRAM user still exists: kept as they are.

    A file that cannot be read is an error (fail closed), not a reason to issue a new password.
    """
    kept: set[Service] = set()
    for name, service in PRINCIPALS.items():
        path = directory / name / CREDENTIALS_FILE
        if not path.is_file() or principals.service(service) not in known_users:
            continue
        if read_credentials_file(path).username == principals.service(service):
            kept.add(service)
    return kept


def write_service_dir(
    directory: Path, name: str, credential: KafkaAccess | None, ca_file: Path, keys: dict[str, str], owner: bool
) -> Path:
    """Fills ``directory/name``: the credential (unless ``None``: kept), the CA certificate, copies of
    the key files named in ``keys`` and the env file pointing at them; owned by the service's uid."""
    uid = SERVICE_UIDS[name] if owner else None
    home = directory / name
    home.mkdir(parents=True, exist_ok=True)
    _owned(home, uid, 0o700)
    # Start from an empty directory (but the kept credential): a key the service no longer holds goes.
    for stale in home.iterdir():
        if stale.name != CREDENTIALS_FILE or credential is not None:
            stale.unlink()
    env = {
        "SHAREBUS_KAFKA_CREDENTIALS_FILE": str(home / CREDENTIALS_FILE),
        "SHAREBUS_KAFKA_CA_FILE": str(home / CA_FILE),
    }
    shutil.copyfile(ca_file, home / CA_FILE)
    if credential is not None:
        write_credentials_file(home / CREDENTIALS_FILE, credential.model_copy(update={"ca_file": home / CA_FILE}))
    for variable, source in keys.items():
        target = home / Path(source).name
        shutil.copyfile(source, target)
        env[variable] = str(target)
    _env_file(home / ENV_FILE, env)
    for path in home.iterdir():
        _owned(path, uid, 0o600)
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharebus_cli.compose_init")
    parser.add_argument("--dir", type=Path, default=Path("/sharebus"))
    args = parser.parse_args(argv)
    settings = BusSettings()
    admin_file, ca_file = args.dir / "admin" / f"{ADMIN_USER}.json", args.dir / "admin" / "ca.pem"
    stored = read_credentials_file(admin_file)
    admin = KafkaAccess(
        bootstrap=settings.bootstrap_servers,
        stream_bootstrap=settings.kafka_stream_bootstrap,
        username=stored.username,
        password=stored.password,
        ca_file=ca_file,
    )
    catalogue = load_catalogue(settings.catalogue_dir)
    kept = kept_credentials(args.dir, Principals(settings.namespace), set(ScramUsers(admin).iterations()))
    missing = sorted(set(PRINCIPALS.values()) - kept)
    issued = provision_access(admin, catalogue, settings.namespace, services=missing)
    keys = bus_keys(args.dir / "keys")
    scrape = {TOKEN_FILE_ENV: str(ensure_scrape_token(args.dir / "keys" / SCRAPE_TOKEN_FILE))}
    for name, service in PRINCIPALS.items():
        write_service_dir(
            args.dir, name, issued.get(service), ca_file, {**keys_for(service, keys), **scrape}, owner=True
        )
    write_service_dir(args.dir, "access", admin, ca_file, {**keys.everyone, **scrape}, owner=True)
    write_prometheus_token(args.dir, Path(scrape[TOKEN_FILE_ENV]), owner=True)
    print(
        f"sharebus: {len(issued)} service principals issued, {len(kept)} kept, "
        f"and the ACLs of {settings.namespace} provisioned"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
