"""ccl ops (being written)."""

TABLE = {}
