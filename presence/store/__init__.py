"""The bundled store: a Redis-compatible server that announces key expiry at the deadline."""

REDIS_VERSION = "7.0.15"  # the Redis release whose replies the store gives (INFO, HELLO)
