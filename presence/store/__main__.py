"""`python -m presence.store`: the same as the `presence-store` command."""

from presence.store.cli import main

main()
