"""Disputes (共享异议): a receiving system disputes a record, the provider answers or is escalated.

The pure state machine is ``sharebus_rules.disputes``; here is its I/O: the events on
``<ns>.disputes`` and their followed view, the on-disk index of deliveries (from the audit trail) that
proves who received a record, and the service the gateway runs.
"""

from sharebus_disputes.deliveries import DeliveryIndex, IndexBehind
from sharebus_disputes.log import DisputeLogError, DisputeView, read_disputes
from sharebus_disputes.service import DisputeNotFound, DisputeService, NotReceived
from sharebus_disputes.settings import DisputeSettings

__all__ = [
    "DeliveryIndex",
    "DisputeLogError",
    "DisputeNotFound",
    "DisputeService",
    "DisputeSettings",
    "DisputeView",
    "IndexBehind",
    "NotReceived",
    "read_disputes",
]
