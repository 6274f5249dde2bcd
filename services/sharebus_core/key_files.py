"""The bus's two signing key pairs on disk, and which process gets which file through its environment.

- The control plane's pair: every reader of grant and API-key events (router, gateway, CLI) gets the
  public key; only the writers (gateway, operator CLI) get the private one.
- The auditor's pair: only the auditor gets the private key; whoever runs ``sharebus audit verify``
  gets the public one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sharebus_core.signing import ControlKeys, Signer, Verifier, ensure_audit_keys, ensure_control_keys


@dataclass(frozen=True, slots=True)
class BusKeys:
    control_private: Path
    control_public: Path
    audit_private: Path
    audit_public: Path

    @property
    def everyone(self) -> dict[str, str]:
        """Public keys only: for every process of the bus."""
        return {
            "SHAREBUS_CONTROL_VERIFY_KEY_FILE": str(self.control_public),
            "SHAREBUS_AUDIT_VERIFY_KEY_FILE": str(self.audit_public),
        }

    @property
    def control_writer(self) -> dict[str, str]:
        """For the processes that write grant and API-key events: the gateway, the portal, the operator's CLI."""
        return {"SHAREBUS_CONTROL_SIGNING_KEY_FILE": str(self.control_private)}

    @property
    def auditor(self) -> dict[str, str]:
        return {"SHAREBUS_AUDIT_SIGNING_KEY_FILE": str(self.audit_private)}

    def control_keys(self, max_delay_s: float) -> ControlKeys:
        """The control plane's keys, to sign and verify in this process."""
        return ControlKeys(Verifier.from_file(self.control_public, max_delay_s), Signer.from_file(self.control_private))


def bus_keys(directory: Path) -> BusKeys:
    """Both key pairs under ``directory``, made on the first call and reused after (idempotent)."""
    control_private, control_public = ensure_control_keys(directory)
    audit_private, audit_public = ensure_audit_keys(directory)
    return BusKeys(control_private, control_public, audit_private, audit_public)
