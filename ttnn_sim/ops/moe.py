"""moe ops (being written)."""

TABLE = {}
