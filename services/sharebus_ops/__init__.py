"""Operations tools over the bus's topics: the dead-letter queue and the audit trail."""
