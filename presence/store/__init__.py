"""The bundled store: a Redis-compatible server that announces key expiry at the deadline."""
