"""Demo sign-ins for ``sharebus run``: a requester and an approver of two departments (a provider of
a conditional class and one of its subscribers' departments), and the bureau. New passwords every run."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_portal.accounts import AccountStore, Role, new_account

BUREAU_DEPARTMENT = "BDB"


@dataclass(frozen=True, slots=True)
class DemoSignIn:
    username: str
    department: str
    roles: tuple[Role, ...]
    password: str


def demo_departments(catalogue: Catalogue) -> tuple[str, str]:
    """(provider, consumer): the first conditional class with a subscriber of another department
    (the bureau's own classes last, so that the bureau stays a separate sign-in)."""
    classes = sorted(catalogue.data_classes.values(), key=lambda c: c.provider == BUREAU_DEPARTMENT)
    for entry in classes:
        if entry.share_type is not ShareType.CONDITIONAL:
            continue
        for subscription in catalogue.subscriptions_of(entry.code):
            consumer = catalogue.department_of_system[subscription.system]
            if consumer != entry.provider:
                return entry.provider, consumer
    provider, consumer, *_ = list(catalogue.departments)
    return provider, consumer


def create_demo_accounts(catalogue: Catalogue, store: AccountStore) -> list[DemoSignIn]:
    provider, consumer = demo_departments(catalogue)
    bureau = BUREAU_DEPARTMENT if BUREAU_DEPARTMENT in catalogue.departments else provider
    wanted = [
        (f"{consumer.lower()}.requester", consumer, (Role.REQUESTER,)),
        (f"{consumer.lower()}.approver", consumer, (Role.APPROVER,)),
        (f"{provider.lower()}.requester", provider, (Role.REQUESTER,)),
        (f"{provider.lower()}.approver", provider, (Role.APPROVER,)),
        ("bureau", bureau, (Role.OPERATOR,)),
    ]
    made = []
    for username, department, roles in wanted:
        password = secrets.token_urlsafe(12)
        store.put(new_account(catalogue, username, department, list(roles), password))
        made.append(DemoSignIn(username, department, roles, password))
    return made
