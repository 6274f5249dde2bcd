"""Settings shared by every service.

Each service has one frozen pydantic-settings class with its own env prefix (``SHAREBUS_ROUTER_``,
``SHAREBUS_REGISTRY_``...). The few values every service needs (where the broker, the registry and
the catalogue are, and the topic namespace) are read from the same un-prefixed variables in all of
them, so one environment configures the whole bus.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharebus_core.deadline_zone import DEFAULT_DEADLINE_TIMEZONE, deadline_zone
from sharebus_core.kafka import KafkaAccess, SecurityProtocol, read_credentials_file
from sharebus_core.scrape_auth import ScrapeToken, load_scrape_token
from sharebus_core.signing import ControlKeys, Signer, SigningKeyError, Verifier

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE_DIR = REPO_ROOT / "schemas"


def shared_config(env_prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=env_prefix, frozen=True, extra="ignore", populate_by_name=True)


class BusSettings(BaseSettings):
    """The values every sharebus process shares. Subclass it per service with its own prefix."""

    model_config = shared_config("SHAREBUS_")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("bootstrap_servers", "SHAREBUS_BOOTSTRAP"),
    )
    namespace: str = Field(
        default="sharebus",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}$",
        validation_alias=AliasChoices("namespace", "SHAREBUS_NAMESPACE"),
        description="Prefix of every topic; tests use a fresh one each",
    )
    registry_url: str = Field(
        default="http://127.0.0.1:8081",
        validation_alias=AliasChoices("registry_url", "SHAREBUS_REGISTRY_URL"),
    )
    catalogue_dir: Path = Field(
        default=DEFAULT_CATALOGUE_DIR,
        validation_alias=AliasChoices("catalogue_dir", "SHAREBUS_CATALOGUE_DIR"),
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="SASL_SSL",
        validation_alias=AliasChoices("kafka_security_protocol", "SHAREBUS_KAFKA_SECURITY_PROTOCOL"),
        description="SASL_SSL (SCRAM-SHA-512 over TLS); PLAINTEXT only to debug, never by default",
    )
    kafka_stream_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("kafka_stream_bootstrap", "SHAREBUS_KAFKA_STREAM_BOOTSTRAP"),
        description="the broker listener for Faust (aiokafka); default: SHAREBUS_BOOTSTRAP",
    )
    kafka_username: str | None = Field(
        default=None, validation_alias=AliasChoices("kafka_username", "SHAREBUS_KAFKA_USERNAME")
    )
    kafka_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("kafka_password", "SHAREBUS_KAFKA_PASSWORD")
    )
    kafka_credentials_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("kafka_credentials_file", "SHAREBUS_KAFKA_CREDENTIALS_FILE"),
        description="JSON with username, password and ca_file, as `sharebus credentials issue --out` writes it",
    )
    kafka_ca_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("kafka_ca_file", "SHAREBUS_KAFKA_CA_FILE"),
        description="the CA certificate that signed the broker's (the broker writes it under its data dir)",
    )

    control_signing_key_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("control_signing_key_file", "SHAREBUS_CONTROL_SIGNING_KEY_FILE"),
        description="the control plane's Ed25519 private key (PEM): processes that write grant and API-key events",
    )
    control_verify_key_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("control_verify_key_file", "SHAREBUS_CONTROL_VERIFY_KEY_FILE"),
        description="the control plane's public key(s) (PEM): every reader of grant and API-key events",
    )
    control_max_delay_s: float = Field(
        default=300.0,
        gt=0,
        validation_alias=AliasChoices("control_max_delay_s", "SHAREBUS_CONTROL_MAX_DELAY_S"),
        description="a control event appended longer than this after it was signed is refused (a replay)",
    )
    audit_verify_key_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("audit_verify_key_file", "SHAREBUS_AUDIT_VERIFY_KEY_FILE"),
        description="the auditor's public key(s) (PEM), to check the signed chain-head anchors",
    )

    # Who may read /metrics (and the probes' details): one token for the whole bus (sharebus_core.scrape_auth).
    scrape_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("scrape_token", "SHAREBUS_SCRAPE_TOKEN")
    )
    scrape_token_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("scrape_token_file", "SHAREBUS_SCRAPE_TOKEN_FILE"),
        description="a file holding the bus's scrape token (Authorization: Bearer ... on /metrics); wins",
    )

    # Working-day deadlines (grant applications, disputes) are counted on one calendar, read by every
    # service, so the grant service, the router's overdue gauge, the portal and the report agree.
    deadline_timezone: str = Field(
        default=DEFAULT_DEADLINE_TIMEZONE,
        validation_alias=AliasChoices("deadline_timezone", "SHAREBUS_DEADLINE_TIMEZONE"),
        description="whose calendar (an IANA name) says which days are working days, for every deadline",
    )
    # The narrower settings 1327f34 introduced, kept: each wins over the bus-wide one for its own deadlines.
    grants_deadline_timezone: str | None = Field(
        default=None,
        validation_alias=AliasChoices("grants_deadline_timezone", "SHAREBUS_GRANTS_DEADLINE_TIMEZONE"),
        description="the grant applications' calendar; default SHAREBUS_DEADLINE_TIMEZONE",
    )
    disputes_deadline_timezone: str | None = Field(
        default=None,
        validation_alias=AliasChoices("disputes_deadline_timezone", "SHAREBUS_DISPUTES_DEADLINE_TIMEZONE"),
        description="the disputes' calendar; default SHAREBUS_DEADLINE_TIMEZONE",
    )

    @field_validator("deadline_timezone", "grants_deadline_timezone", "disputes_deadline_timezone")
    @classmethod
    def _known_deadline_zone(cls, name: str | None) -> str | None:
        # Refused at start, in every process, rather than at the first deadline counted.
        if name is not None:
            deadline_zone(name)
        return name

    @property
    def grants_deadline_zone(self) -> ZoneInfo:
        """The calendar of a grant application's answer deadline (everything that counts it uses this)."""
        return deadline_zone(self.grants_deadline_timezone or self.deadline_timezone)

    @property
    def disputes_deadline_zone(self) -> ZoneInfo:
        """The calendar of a dispute's answer deadline."""
        return deadline_zone(self.disputes_deadline_timezone or self.deadline_timezone)

    def control_keys(self, *, sign: bool = False) -> ControlKeys:
        """The control plane's keys for this process; refuses (``SigningKeyError``) when a needed one is missing.

        A verify key is always needed: every process that touches grants or API keys reads them. The
        signing key is loaded when configured, and required with ``sign=True``.
        """
        if self.control_verify_key_file is None:
            raise SigningKeyError(
                "no control verify key: set SHAREBUS_CONTROL_VERIFY_KEY_FILE to the control plane's public key "
                "(without it no grant or API-key event can be trusted, so none is read)"
            )
        verifier = Verifier.from_file(self.control_verify_key_file, self.control_max_delay_s)
        if self.control_signing_key_file is None:
            if sign:
                raise SigningKeyError(
                    "no control signing key: set SHAREBUS_CONTROL_SIGNING_KEY_FILE (this process writes grant "
                    "and API-key events, and unsigned ones are ignored by every reader)"
                )
            return ControlKeys(verifier)
        return ControlKeys(verifier, Signer.from_file(self.control_signing_key_file))

    def scrape_auth(self) -> ScrapeToken:
        """The token ``/metrics`` demands; raises ``ScrapeTokenError`` naming the variables when none is set."""
        return load_scrape_token(self.scrape_token, self.scrape_token_file)

    def audit_verifier(self) -> Verifier:
        if self.audit_verify_key_file is None:
            raise SigningKeyError(
                "no audit verify key: set SHAREBUS_AUDIT_VERIFY_KEY_FILE to the auditor's public key "
                "(it checks the signed anchors of the audit chains)"
            )
        return Verifier.from_file(self.audit_verify_key_file)

    @property
    def kafka(self) -> KafkaAccess:
        """This process's identity on the cluster. A credentials file wins over the separate variables."""
        username, password, ca_file = self.kafka_username, self.kafka_password, self.kafka_ca_file
        if self.kafka_credentials_file is not None:
            stored = read_credentials_file(self.kafka_credentials_file)
            username, password, ca_file = stored.username, stored.password, ca_file or stored.ca_file
        return KafkaAccess(
            bootstrap=self.bootstrap_servers,
            stream_bootstrap=self.kafka_stream_bootstrap,
            security_protocol=self.kafka_security_protocol,
            username=username,
            password=password,
            ca_file=ca_file,
        )

    @property
    def registry_auth(self) -> str | None:
        """``user:password`` for the schema registry's HTTP Basic auth: the same credential as Kafka."""
        access = self.kafka
        if access.username is None or access.password is None:
            return None
        return f"{access.username}:{access.password.get_secret_value()}"
