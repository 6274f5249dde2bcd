"""The federation service: one district's MirrorMaker 2 and schema follower, run as a process.

``python -m sharebus_federation`` (``__main__``) builds this from ``FederationSettings``: it reads
MirrorMaker 2's credentials on both clusters from the 0600 files the launcher provisioned
(``provision_mirror``), and a registry writer's credential for each bus's registry. It serves
``/metrics`` (``FederationCollector``) and ``/healthz``, which answers 503 until MirrorMaker 2 runs
every flow and the schema follower's last pass imported everything it should have.

MirrorMaker 2 starts only once a pass has found the two registries' own id ranges disjoint: while
they overlap, one id could mean a city schema on one bus and a district's on the other, and records
would be decoded with the wrong schema. Until then nothing is imported or mirrored, ``/healthz``
answers 503 naming the ranges, and the error is logged.
"""

from __future__ import annotations

import logging
import threading
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess, read_credentials_file
from sharebus_core.probe_server import serve_probes
from sharebus_federation.follower import SchemaFollower
from sharebus_federation.metrics import FederationCollector
from sharebus_federation.mirror import MirrorError, MirrorHealth, MirrorMaker
from sharebus_federation.plan import CITY, check_accepted, plan_for, schema_subjects
from sharebus_federation.schemas import RegistryEnd
from sharebus_federation.settings import BusEnd, FederationSettings

log = logging.getLogger("sharebus.federation")


def mirror_access(end: BusEnd) -> KafkaAccess:
    """MirrorMaker 2's own principal on one cluster, from the credential file the launcher wrote."""
    held = read_credentials_file(end.credentials_file)
    access = KafkaAccess(bootstrap=end.bootstrap, username=held.username, password=held.password, ca_file=held.ca_file)
    access.check()
    return access


def registry_end(end: BusEnd) -> RegistryEnd:
    held = read_credentials_file(end.registry_credentials_file)
    return RegistryEnd(end.registry_url, f"{held.username}:{held.password.get_secret_value()}")


class FederationService:
    def __init__(self, settings: FederationSettings) -> None:
        config = settings.service_config()
        self.settings = settings
        # /metrics answers only the scrape token's holders (and /healthz's detail): no token, no start.
        self.scrape_token = settings.scrape_auth()
        city_catalogue = load_catalogue(config.city.catalogue_dir)
        plan = plan_for(settings.namespace, settings.district, load_catalogue(config.district.catalogue_dir))
        if settings.district not in set(city_catalogue.district_of_department.values()):
            raise MirrorError(
                f"the city catalogue {config.city.catalogue_dir} names no district {settings.district!r} (districts:)"
            )
        # Before anything reaches a cluster: the district's catalogue is the district's to write.
        self.plan = check_accepted(plan, city_catalogue)
        self.mirror = MirrorMaker(settings, self.plan, mirror_access(config.city), mirror_access(config.district))
        city_registry, district_registry = registry_end(config.city), registry_end(config.district)
        self.follower = SchemaFollower(
            city_registry,
            district_registry,
            schema_subjects(self.plan, "up"),
            schema_subjects(self.plan, "down"),
            district_code=settings.district,
            every_s=settings.schema_sync_s,
        )
        self._health_lock = threading.Lock()
        self._health = MirrorHealth(running=False, flows={})
        self._halt = threading.Event()
        self.registry = CollectorRegistry()
        self.registry.register(FederationCollector(city_catalogue, self.mirror, self.follower, self.health))
        # True while MirrorMaker 2 starts (minutes): a stop signal then interrupts the wait (__main__).
        self.starting = False

    def health(self) -> MirrorHealth:
        """The last health read by the refresher thread: a probe is answered at once, however slow
        reading MirrorMaker 2's status topics is on a loaded machine."""
        with self._health_lock:
            return self._health

    def _refresh_health(self) -> None:
        while not self._halt.wait(self.settings.health_interval_s):
            health = self.mirror.health()
            with self._health_lock:
                self._health = health

    def health_body(self) -> dict[str, object]:
        health = self.health()
        flows = {("up" if target == CITY else "down"): state for (_s, target), state in health.flows.items()}
        schemas = self.follower.health()
        return {
            "healthy": health.mirroring and schemas["healthy"] is True,
            "district": self.plan.district,
            "mirrormaker_running": health.running,
            "flows": flows,
            "schemas_imported": self.follower.imported,
            "schema_error": self.follower.last_error,
            "schemas": schemas,
        }

    def serve(self) -> ThreadingHTTPServer:
        """``/metrics`` and ``/healthz`` in a daemon thread; ``shutdown()`` the server to stop."""

        def healthz() -> tuple[int, dict[str, object]]:
            body = self.health_body()
            return (200 if body["healthy"] else 503), body

        return serve_probes(
            self.settings.metrics_host,
            self.settings.metrics_port,
            self.registry,
            {"/healthz": healthz},
            "federation-http",
            self.scrape_token,
        )

    def _watch(self, stop: threading.Event) -> int:
        while not stop.wait(1.0):
            if not self.mirror.is_running():
                log.error("MirrorMaker 2 exited; see %s", self.mirror.log_path)
                return 1
        return 0

    def _ranges_disjoint(self, stop: threading.Event) -> bool:
        """Runs schema passes until one finds the registries' id ranges disjoint (True), or ``stop`` (False).
        The follower logs the overlap when it is first found; /healthz names it meanwhile."""
        while True:
            self.follower.run_once()
            if self.follower.state.ranges is not None:
                return True
            if stop.wait(self.settings.schema_sync_s):
                return False

    def run(self, stop: threading.Event) -> int:
        """Until ``stop`` is set: 0, or 1 when MirrorMaker 2 failed to start or exited on its own."""
        server = self.serve()
        refresher = threading.Thread(target=self._refresh_health, name="federation-health", daemon=True)
        refresher.start()
        try:
            if not self._ranges_disjoint(stop):
                return 0
            self.follower.start()
            self.starting = True
            self.mirror.start()
            self.starting = False
            log.info("district %s federated: flows %s", self.plan.district, self.plan.flows())
            return self._watch(stop)
        except MirrorError:
            log.exception("MirrorMaker 2 did not start")
            return 1
        finally:
            self._halt.set()
            refresher.join(timeout=30)
            self.mirror.stop()
            self.follower.stop()
            server.shutdown()
            server.server_close()


__all__ = ["FederationService", "mirror_access", "registry_end"]
