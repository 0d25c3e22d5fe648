"""presence: real-time presence for the web, with a bundled expiry-notifying store."""

__version__ = "0.1.0"
