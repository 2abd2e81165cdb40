"""attention ops (being written)."""

TABLE = {}
