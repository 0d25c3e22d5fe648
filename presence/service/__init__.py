"""The presence domain: presence model, channel event logs, expiry subscriber, store gateway."""
