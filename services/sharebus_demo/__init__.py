"""Demo departments for ``sharebus run --demo``: realistic records, publishers and subscribers."""
