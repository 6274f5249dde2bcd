"""Sharing rules as pure functions: no Kafka, no HTTP, no clocks of their own."""

from sharebus_rules.decision import Decision, Deliver, Deny, DenyReason
from sharebus_rules.routing import RoutePlan, decide, plan_routes, select_grant

__all__ = ["Decision", "Deliver", "Deny", "DenyReason", "RoutePlan", "decide", "plan_routes", "select_grant"]
