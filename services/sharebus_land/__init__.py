"""sharebus land: keeps a consumer system's own database up to date with what it receives, exactly once."""
