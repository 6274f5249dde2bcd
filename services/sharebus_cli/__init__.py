"""The ``sharebus`` command."""
