"""``sharebus acl``: the ACLs the catalogue implies, against those on the broker.

``plan`` shows the difference, ``apply`` repairs it (what the reconciler does on its own, now), and
``show`` lists what one system or service may do. Runs with the admin credential.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from confluent_kafka import KafkaException

from sharebus_access.acls import AclRule, PatternType, desired_acls
from sharebus_access.errors import AccessError
from sharebus_access.plan import Scope
from sharebus_access.reconcile import AclAdmin, apply_plan, read_plan
from sharebus_access.scram import ScramUsers, removed_systems
from sharebus_cli.credentials_cmd import admin_access
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import SERVICES, Principals
from sharebus_core.settings import BusSettings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    acl = commands.add_parser("acl", help="the ACLs generated from the catalogue: plan, apply, show")
    sub = acl.add_subparsers(dest="action", required=True)
    for name, text in (
        ("plan", "what the broker lacks (+) and has too much of (-) in this namespace"),
        ("apply", "create what is missing and delete what is extra, now"),
        ("show", "what one system (or bus service) may do"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--registry-namespace", help="the schema registry's namespace, when it is not this one")
        if name == "show":
            who = p.add_mutually_exclusive_group(required=True)
            who.add_argument("--system", help="a catalogue system, e.g. tax-levy")
            who.add_argument("--service", choices=SERVICES, help="a bus service")
            p.add_argument("--json", action="store_true")


def _row(rule: AclRule, state: str) -> str:
    name = rule.resource_name + ("*" if rule.pattern is PatternType.PREFIXED else "")
    return f"  {rule.operation.value:<17} {rule.resource_type.value.lower():<17} {name:<48} {state}"


def _show(args: argparse.Namespace, admin: AclAdmin, catalogue: Catalogue, scope: Scope) -> str:
    principals = Principals(scope.namespace)
    if args.system:
        username = principals.system(args.system)
        who = f"system {args.system} of {catalogue.department_of_system[args.system]}"
    else:
        owner = Principals(scope.registry_namespace or scope.namespace) if args.service == "registry" else principals
        username, who = owner.service(args.service), f"bus service {args.service}"
    desired = sorted(
        r for r in desired_acls(catalogue, scope.namespace, scope.registry_namespace) if r.username == username
    )
    present = {r for r in admin.current() if r.username == username}
    if args.json:
        return json.dumps([{**dataclasses.asdict(r), "present": r in present} for r in desired], indent=2)
    lines = [f"User:{username} ({who}) may:"]
    lines += [_row(rule, "in place" if rule in present else "MISSING (acl apply)") for rule in desired]
    extra = sorted(present - set(desired))
    if extra:
        lines.append("and has on the broker, beyond the catalogue's rules (the reconciler deletes them):")
        lines += [_row(rule, "EXTRA") for rule in extra]
    else:
        lines.append("and nothing else.")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    if getattr(args, "system", None):
        catalogue.system(args.system)  # an unknown system is named before Kafka is asked anything
    try:
        access = admin_access(settings, change=args.action == "apply")
        admin = AclAdmin(access)
    except KafkaException as exc:
        raise AccessError(f"cannot make a Kafka admin client: {exc}") from exc
    scope = Scope(settings.namespace, args.registry_namespace)
    if args.action == "show":
        return _show(args, admin, catalogue, scope), 0
    plan = read_plan(admin, catalogue, scope)
    removed = _removed_credentials(access, catalogue, scope.namespace)
    if args.action == "plan":
        return "\n".join([*plan.lines(), *removed, plan.summary()]), 0
    apply_plan(admin, plan)
    if plan.in_step:
        return "\n".join([*removed, plan.summary()]), 0
    return "\n".join([*plan.lines(), *removed, f"applied: {len(plan.missing)} created, {len(plan.extra)} deleted"]), 0


def _removed_credentials(access: KafkaAccess, catalogue: Catalogue, namespace: str) -> list[str]:
    """``!`` lines for systems gone from the catalogue whose credential still logs in (docs/security.md)."""
    principals = Principals(namespace)
    return [
        f"! User:{principals.system(s)} has a credential but {s} is not in the catalogue: "
        f"sharebus credentials revoke --system {s}"
        for s in removed_systems(ScramUsers(access).iterations(), catalogue, namespace)
    ]
