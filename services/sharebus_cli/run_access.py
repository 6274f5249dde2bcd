"""Who each part of ``sharebus run`` is: a principal per bus service, and one per demo system.

The broker's admin (its only super user) provisions them and the catalogue's ACLs, then runs only
the ACL reconciler. Every other process gets its own credential, by environment (services) or by a
0600 file under ``var/credentials`` (the operator's CLI and the demo systems, as a department would
keep its own). The bus keeps no password in clear: a restart issues new ones.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sharebus_access.credentials import SystemCredentials, provision_access
from sharebus_broker import KafkaBroker
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess, write_credentials_file
from sharebus_core.principals import Service


@dataclass(frozen=True)
class RunIdentities:
    admin: KafkaAccess
    services: dict[Service, KafkaAccess]
    systems: dict[str, KafkaAccess]
    credentials_dir: Path

    @property
    def operator_file(self) -> Path:
        return self.credentials_dir / "operator.json"


def provision_identities(
    admin: KafkaAccess, catalogue: Catalogue, namespace: str, credentials_dir: Path, demo: bool
) -> RunIdentities:
    services = provision_access(admin, catalogue, namespace)
    write_credentials_file(credentials_dir / "operator.json", services["operator"])
    systems: dict[str, KafkaAccess] = {}
    if demo:
        issuer = SystemCredentials(admin, catalogue, namespace)
        # A district's systems are served by their own bus; a credential on this cluster would let
        # them write their federated classes here directly (docs/federation.md).
        own = [
            s for s in catalogue.systems if catalogue.department_of_system[s] not in catalogue.district_of_department
        ]
        # Each new credential is confirmed by a real login; a few at a time keeps start-up short.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for system, issued in zip(own, pool.map(issuer.renew, own), strict=True):
                write_credentials_file(credentials_dir / f"{system}.json", issued.access)
                systems[system] = issued.access
    return RunIdentities(admin, services, systems, credentials_dir)


def print_cli_access(credentials_dir: Path, who: RunIdentities, broker: KafkaBroker, keys: dict[str, str]) -> None:
    """Where the credentials are (never the secrets), and what the operator's shell needs for the CLI."""
    exports = {
        "SHAREBUS_KAFKA_CREDENTIALS_FILE": str(who.operator_file),
        "SHAREBUS_BOOTSTRAP": broker.bootstrap,
        **keys,
    }
    print(
        f"sharebus: Kafka: SASL_SSL (SCRAM-SHA-512) on {broker.bootstrap}, CA {broker.ca_file}; a principal per "
        f"service; credentials of the operator and the demo systems in {credentials_dir} (0600)\n"
        f"sharebus: for the operator's CLI: export {' '.join(f'{k}={v}' for k, v in exports.items())}",
        flush=True,
    )


__all__ = ["RunIdentities", "print_cli_access", "provision_identities"]
