"""The audit trail: every delivery and denial, hash-chained per partition so tampering shows."""
