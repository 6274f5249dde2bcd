from __future__ import annotations

from pydantic import Field, field_validator

from sharebus_access.namespaces import namespace_problem
from sharebus_core.settings import BusSettings, shared_config


class AccessSettings(BusSettings):
    """Env prefix ``SHAREBUS_ACCESS_``. The Kafka credential must be the admin's: only it may change ACLs."""

    model_config = shared_config("SHAREBUS_ACCESS_")

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=6069, ge=0, le=65535)
    interval_s: float = Field(default=30.0, gt=0, description="the ACLs are checked and repaired this often")
    catalogue_poll_s: float = Field(
        default=2.0, gt=0, description="how often the catalogue files are checked for a change"
    )
    registry_namespace: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}$",
        description="the schema registry's namespace when it is not the bus's own",
    )

    @field_validator("namespace", "registry_namespace")
    @classmethod
    def _apart_from_other_namespaces(cls, value: str | None) -> str | None:
        # Refused at start, not at the first run: the reconciler would own another namespace's names.
        problem = None if value is None else namespace_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value
