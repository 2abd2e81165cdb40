"""compute ops (being written)."""

TABLE = {}
