"""``sharebus run --demo --districts 1``: a district bus beside the city bus, federated (docs/federation.md).

The district (Yubei, ``catalogue-districts/yubei``) gets its own secured KRaft cluster, registry (ids
from ``district_first_id``: ``1 + ID_SPAN`` for the first district) and router, its own principals and
keys under ``var/districts/<code>``.
The city bus runs on a catalogue that names the district under ``districts:``: the demo catalogue's
own file plus that one key, written under ``var/districts/city-catalogue`` next to links to the demo
catalogue's schema files, so the demo catalogue exists once. The federation service
(``python -m sharebus_federation``) runs MirrorMaker 2 with the principals provisioned here.

The demo grants both ways on the city bus: the district's federated penalties to a city system (up,
approved by the district's regulator), and a city class to the district's tax system (down, 回流).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_cli.children import Child, ChildFailed, start_child
from sharebus_cli.run_access import RunIdentities, provision_identities
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.catalogue.loader import CATALOGUE_FILE
from sharebus_core.errors import SharebusError
from sharebus_core.grant_log import read_grants
from sharebus_core.kafka import KafkaAccess, write_credentials_file
from sharebus_core.key_files import bus_keys
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, scrape_headers
from sharebus_core.settings import REPO_ROOT, BusSettings
from sharebus_core.signing import ControlKeys
from sharebus_core.topics import TopicNames
from sharebus_demo.workload import DemoWorkload
from sharebus_federation.access import provision_mirror
from sharebus_federation.plan import CITY, Federation, check_accepted, plan_for
from sharebus_grants import GrantService
from sharebus_registry.state import ID_SPAN
from sharebus_sdk import PublisherSettings, SubscriberSettings

# The demo's grants across levels: (consumer system, data class) on the city bus.
UP_CONSUMER = "tax-levy"  # a city system (a demo receiver) granted the district's federated penalties
DOWN_CONSUMER = "yb-tax"  # the district's tax system, granted a city class (回流)
DOWN_CLASS = "101001001/000001"  # the city's population base (BDB, conditional, real-time)


class DistrictsError(SharebusError, RuntimeError):
    pass


class DistrictRunSettings(BaseSettings):
    """The district side of ``sharebus run`` (env prefix ``SHAREBUS_RUN_``, as ``RunSettings``)."""

    model_config = SettingsConfigDict(env_prefix="SHAREBUS_RUN_", frozen=True, extra="ignore")

    districts: int = Field(default=0, ge=0, le=1, description="district buses beside the city bus (0 or 1)")
    district_catalogue_dir: Path = REPO_ROOT / "catalogue-districts" / "yubei"
    district_code: str = Field(default="yubei", pattern=r"^[a-z][a-z0-9]{1,30}$")
    district_dir: Path = Field(
        default=REPO_ROOT / "var" / "districts",
        description="the district's cluster, credentials, keys and router state, and the city's catalogue",
    )
    # Clear of the city's defaults (RunSettings, BrokerSettings).
    district_broker_port: int = Field(default=9192, ge=0, le=65535)
    district_registry_port: int = Field(default=8181, ge=1, le=65535)
    district_router_port: int = Field(default=6176, ge=1, le=65535)
    federation_port: int = Field(default=6177, ge=1, le=65535)
    district_demo_rate: float = Field(default=4.0, gt=0, description="the district's demo records per second")


def city_catalogue_with(base_dir: Path, district_code: str, district_dir: Path, out: Path) -> Path:
    """``out``: the catalogue of ``base_dir`` naming the district under ``districts:``. Its other
    files are links to ``base_dir``'s, so nothing of the demo catalogue is copied."""
    text = (base_dir / CATALOGUE_FILE).read_text(encoding="utf-8")
    if "districts" in (yaml.safe_load(text) or {}):
        raise DistrictsError(f"{base_dir / CATALOGUE_FILE} already names districts; run it without --districts")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for entry in base_dir.iterdir():
        if entry.name != CATALOGUE_FILE:
            (out / entry.name).symlink_to(entry.resolve())
    district = yaml.safe_dump([{"code": district_code, "catalogue": str(district_dir.resolve())}])
    block = "\n# Added by `sharebus run --districts`: the district bus federated with this one.\ndistricts:\n"
    (out / CATALOGUE_FILE).write_text(text.rstrip("\n") + "\n" + block + district, encoding="utf-8")
    return out


def district_first_id(district_codes: Iterable[str], code: str) -> int:
    """The first id of a district registry's own range: the n-th of the city catalogue's districts, sorted by
    code, gets ``1 + n * ID_SPAN`` (the city keeps 1), so no two districts of one city share a range."""
    ordered = sorted({*district_codes, code})
    return 1 + (ordered.index(code) + 1) * ID_SPAN


@dataclass
class DistrictRun:
    """One district bus of the demo, and its federation with the city."""

    settings: DistrictRunSettings
    namespace: str
    log_dir: Path
    city_catalogue_dir: Path
    catalogue: Catalogue = field(init=False)
    plan: Federation = field(init=False)
    children: list[Child] = field(default_factory=list)
    broker: KafkaBroker | None = None
    workload: DemoWorkload | None = None
    city_router_metrics: str = ""
    city_registry_url: str = ""
    scrape_token_env: dict[str, str] = field(default_factory=dict)
    first_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.catalogue = load_catalogue(self.settings.district_catalogue_dir)
        city = load_catalogue(self.city_catalogue_dir)
        # MirrorMaker 2's rights on the city come from this plan: only what the city's catalogue gives the district.
        plan = plan_for(self.namespace, self.code, self.catalogue)
        self.plan = check_accepted(plan, city)
        self.first_id = district_first_id(city.district_of_department.values(), self.code)

    @classmethod
    def prepare(cls, settings: DistrictRunSettings, city_dir: Path, namespace: str, log_dir: Path) -> DistrictRun:
        """Writes the city's catalogue naming the district (before the city bus loads it)."""
        out = settings.district_dir / "city-catalogue"
        merged = city_catalogue_with(city_dir, settings.district_code, settings.district_catalogue_dir, out)
        return cls(settings, namespace, log_dir, merged)

    @property
    def code(self) -> str:
        return self.settings.district_code

    @property
    def home(self) -> Path:
        return self.settings.district_dir / self.code

    def ports(self) -> list[tuple[str, int]]:
        s = self.settings
        named = [("broker", s.district_broker_port), ("registry", s.district_registry_port)]
        named += [("router", s.district_router_port)]
        return [(f"district's {n}", p) for n, p in named if p] + [("federation service", s.federation_port)]

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.district_registry_port}"

    @property
    def federation_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.federation_port}"

    def start(
        self,
        stack: ExitStack,
        city: KafkaAccess,
        city_who: RunIdentities,
        control: ControlKeys,
        city_env: dict[str, str],
    ) -> list[Child]:
        """Starts the district bus, grants both ways on the city, the federation and the district's demo."""
        self.city_router_metrics = f"http://127.0.0.1:{city_env['SHAREBUS_ROUTER_WEB_PORT']}/metrics"
        # One scrape token for the whole run: the district's services demand the city's.
        self.scrape_token_env = {TOKEN_FILE_ENV: city_env[TOKEN_FILE_ENV]}
        self.city_registry_url = city_env["SHAREBUS_REGISTRY_URL"]
        broker_settings = BrokerSettings(
            port=self.settings.district_broker_port, controller_port=0, stream_port=0, data_dir=self.home / "kafka"
        )
        self.broker = KafkaBroker(broker_settings).start()
        stack.callback(self.broker.stop)
        district = self.broker.admin_access
        print(f"sharebus: district {self.code}'s broker ready on {self.broker.bootstrap}", flush=True)
        who = provision_identities(district, self.catalogue, self.namespace, self.home / "credentials", True)
        keys = bus_keys(self.home / "keys")
        env = {
            **keys.everyone,
            **self.scrape_token_env,
            "SHAREBUS_NAMESPACE": self.namespace,
            "SHAREBUS_REGISTRY_URL": self.registry_url,
            "SHAREBUS_CATALOGUE_DIR": str(self.settings.district_catalogue_dir),
            "SHAREBUS_REGISTRY_PORT": str(self.settings.district_registry_port),
            # The district's schema ids never collide with the city's or another district's (docs/federation.md).
            "SHAREBUS_REGISTRY_FIRST_ID": str(self.first_id),
            "SHAREBUS_ROUTER_WEB_PORT": str(self.settings.district_router_port),
            "SHAREBUS_ROUTER_TOPIC_REPLICATION_FACTOR": str(self.broker.replication.factor),
            "SHAREBUS_ROUTER_DATA_DIR": str(self.home / "router"),
        }
        self._start(stack, "registry", {**env, **who.services["registry"].env()}, f"{self.registry_url}/", 60)
        router_ready = f"http://127.0.0.1:{self.settings.district_router_port}/readyz"
        self._start(stack, "router", {**env, **who.services["router"].env()}, router_ready, 120)
        for line in self._grant_both_ways(city, city_who, control):
            print(f"sharebus: demo grant approved across levels: {line}", flush=True)
        self._start_federation(stack, city, city_who, who)
        self._start_demo(stack, who, keys.control_keys(60.0))
        return self.children

    def _start(self, stack: ExitStack, name: str, env: dict[str, str], ready: str, timeout_s: float) -> Child:
        child = start_child(
            f"{self.code}-{name}", f"sharebus_{name}", env, self.log_dir / f"{self.code}-{name}.log", ready, timeout_s
        )
        stack.callback(child.stop)
        self.children.append(child)
        print(f"sharebus: district {self.code}'s {name} ready ({ready})", flush=True)
        return child

    def _grant_both_ways(self, city: KafkaAccess, city_who: RunIdentities, control: ControlKeys) -> list[str]:
        """On the city bus, as the demo's bureau does for the city's own shares. The up grant is
        approved by the district's regulator (the provider); the down grant by the city's."""
        catalogue = load_catalogue(self.city_catalogue_dir)
        operator = city_who.services["operator"]
        grants = GrantService(catalogue, operator, TopicNames(self.namespace).grants, control=control)
        held = {(g.consumer, g.data_class) for g in read_grants(operator, grants.topic, control.verifier).values()}
        wanted = [(UP_CONSUMER, c.code) for c in self.catalogue.federated_up()] + [(DOWN_CONSUMER, DOWN_CLASS)]
        approved = []
        for consumer, code in wanted:
            if (consumer, code) in held:
                continue
            entry = catalogue.data_class(code)
            grant = grants.apply(
                department=catalogue.department_of_system[consumer],
                requester="demo officer",
                consumer=consumer,
                data_class=code,
                purpose="two-level sharing demo",
                scenario="sharebus demo (districts)",
                masked_fields=entry.sensitive_fields,
            )
            valid_until = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
            grants.approve(grant.grant_id, department=entry.provider, valid_until=valid_until)
            approved.append(f"{consumer} <- {code} ({'up' if consumer == UP_CONSUMER else 'down'})")
        return approved

    def _start_federation(
        self, stack: ExitStack, city: KafkaAccess, city_who: RunIdentities, who: RunIdentities
    ) -> None:
        assert self.broker is not None
        accesses = provision_mirror(self.plan, city, self.broker.admin_access)
        files = {side: self.home / "credentials" / f"mm2-on-{side}.json" for side in ("city", "district")}
        write_credentials_file(files["city"], accesses[CITY])
        write_credentials_file(files["district"], accesses[self.code])
        prefix = "SHAREBUS_FEDERATION_"
        env = {
            **self.scrape_token_env,
            f"{prefix}NAMESPACE": self.namespace,
            f"{prefix}DISTRICT": self.code,
            f"{prefix}DATA_DIR": str(self.home / "federation"),
            f"{prefix}METRICS_PORT": str(self.settings.federation_port),
            f"{prefix}CITY_BOOTSTRAP": city.bootstrap,
            f"{prefix}CITY_CREDENTIALS_FILE": str(files["city"]),
            f"{prefix}CITY_REGISTRY_URL": self.city_registry_url,
            # The schema follower imports into each registry as that bus's operator (a registry writer).
            f"{prefix}CITY_REGISTRY_CREDENTIALS_FILE": str(city_who.operator_file),
            f"{prefix}CITY_CATALOGUE_DIR": str(self.city_catalogue_dir),
            f"{prefix}DISTRICT_BOOTSTRAP": self.broker.bootstrap,
            f"{prefix}DISTRICT_CREDENTIALS_FILE": str(files["district"]),
            f"{prefix}DISTRICT_REGISTRY_URL": self.registry_url,
            f"{prefix}DISTRICT_REGISTRY_CREDENTIALS_FILE": str(who.operator_file),
            f"{prefix}DISTRICT_CATALOGUE_DIR": str(self.settings.district_catalogue_dir),
        }
        print(f"sharebus: MirrorMaker 2 for {self.code} starting (a minute or more)...", flush=True)
        # MirrorMaker 2 alone may take its whole start timeout (240 s) on a loaded machine.
        child = start_child(
            f"federation-{self.code}",
            "sharebus_federation",
            env,
            self.log_dir / f"federation-{self.code}.log",
            f"{self.federation_url}/healthz",
            330,
        )
        # MirrorMaker 2's JVM may take up to 30 s to stop inside it.
        stack.callback(child.stop, 60.0)
        self.children.append(child)
        print(f"sharebus: federation {self.code} <-> city running ({self.federation_url}/metrics)", flush=True)

    def _start_demo(self, stack: ExitStack, who: RunIdentities, control: ControlKeys) -> None:
        common = BusSettings(
            **who.services["operator"].settings_fields(),
            namespace=self.namespace,
            registry_url=self.registry_url,
            catalogue_dir=self.settings.district_catalogue_dir,
        ).model_dump()
        workload = DemoWorkload(
            self.catalogue,
            PublisherSettings.model_validate(common),
            SubscriberSettings.model_validate(common),
            self.settings.district_demo_rate,
            control,
            who.systems,
        )
        # The district's tax system reads what the city granted it, from its own bus.
        workload.receivers = [DOWN_CONSUMER]
        workload.start()
        stack.callback(workload.close)
        self.workload = workload

    def flows(self) -> tuple[int, int]:
        """(records of the district's classes the city delivered, city records the district's system received)."""
        up_classes = {c.code for c in self.catalogue.federated_up()}
        up = 0.0
        try:
            headers = scrape_headers(self.scrape_token_env)
            text = httpx.get(self.city_router_metrics, timeout=1.0, headers=headers).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "sharebus_records_total" and sample.labels.get("data_class") in up_classes:
                        up += sample.value
        except httpx.HTTPError:
            pass
        down = self.workload.counts.received[DOWN_CONSUMER] if self.workload is not None else 0
        return int(up), down

    def status(self) -> str:
        """The status line's end; raises ``ChildFailed`` once the district's broker stopped (the
        run's watch loop checks the city's broker and every child process, this one here)."""
        if self.broker is not None and not self.broker.is_running():
            raise ChildFailed(f"district {self.code}'s Kafka broker stopped unexpectedly; see {self.broker.log_path}")
        up, down = self.flows()
        return f" | {self.code} up {up:>6} down {down:>6}"

    def describe(self) -> list[str]:
        broker = self.broker
        up = ", ".join(c.code for c in self.catalogue.federated_up())
        return [
            f"  district   {self.code}: broker {broker.bootstrap if broker else '?'} (data {self.home}), "
            f"registry {self.registry_url} (ids from {self.first_id}), "
            f"router http://127.0.0.1:{self.settings.district_router_port}/metrics",
            f"  federation {self.federation_url}/metrics (also /healthz): MirrorMaker 2 up {up} -> city "
            f"to {UP_CONSUMER}; down {DOWN_CLASS} granted to {DOWN_CONSUMER}; city catalogue {self.city_catalogue_dir}",
        ]


def district_run(districts: int | None, city_dir: Path, namespace: str, log_dir: Path) -> DistrictRun | None:
    """The district bus to run beside the city's (``--districts``, else ``SHAREBUS_RUN_DISTRICTS``), if any."""
    settings = DistrictRunSettings() if districts is None else DistrictRunSettings(districts=districts)
    return DistrictRun.prepare(settings, city_dir, namespace, log_dir) if settings.districts else None


__all__ = ["DistrictRun", "DistrictRunSettings", "city_catalogue_with", "district_run"]
