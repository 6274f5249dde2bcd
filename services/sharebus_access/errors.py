"""Errors of access management, each with the exit code the ``sharebus`` command ends with."""

from __future__ import annotations

from sharebus_core.errors import SharebusError


class AccessError(SharebusError, RuntimeError):
    """The broker refused or did not answer a credential or ACL request."""

    exit_code = 1


class CredentialError(AccessError):
    """A credential change failed, or does not fit the user's state."""


class AlreadyIssued(CredentialError):
    exit_code = 3


class NotIssued(CredentialError):
    exit_code = 4


class AclError(AccessError):
    """The broker refused or did not answer an ACL request."""


class AclsUnreadable(AclError):
    """The credential may not read the cluster's ACLs (only the admin may): never taken as "no ACLs"."""

    exit_code = 7


class NamespaceClash(AccessError, ValueError):
    """A namespace whose names other namespaces' service prefixes would cover (``namespaces.py``)."""

    exit_code = 2
