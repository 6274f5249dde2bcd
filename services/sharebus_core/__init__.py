"""The small shared core of sharebus: settings, catalogue models, topic names, wire format, headers."""
