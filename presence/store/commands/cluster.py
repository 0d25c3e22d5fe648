"""The cluster commands of a Redis started without `cluster-enabled`: CLUSTER, ASKING,
READONLY, READWRITE.

The store is never a cluster node, so each of them answers as redis-server 7.0 does in
that case: after the usual arity and unknown-subcommand checks, every CLUSTER subcommand
(HELP and KEYSLOT included: Redis 7.0 checks cluster mode before anything else) and the
three others reply "ERR This instance has cluster support disabled". They are registered
with Redis's arity, flags, ACL categories and tips, so COMMAND INFO, COMMAND DOCS and ACL
rules treat them as Redis does.
"""

from __future__ import annotations

from presence.store import replies
from presence.store.commands import CommandError, command, run_subcommand, subcommand

# name        arity  flags
# cluster       -2   -              (the 27 subcommands below)
# asking         1   fast
# readonly       1   fast loading stale
# readwrite      1   fast loading stale


def _disabled(client, argv):
    """Refused: this instance has cluster support disabled."""
    raise CommandError(replies.CLUSTER_DISABLED)


@command("cluster", -2, "", keys=(0, 0, 0))
def cluster(client, argv):
    """A container for Redis Cluster commands; refused, cluster support is disabled."""
    return run_subcommand("cluster", client, argv)


_ADMIN = "admin stale no-async-loading"
# (name, arity, flags, tips) of Redis 7.0's CLUSTER subcommands
_SUBCOMMANDS = [
    ("addslots", -3, _ADMIN, ""),
    ("addslotsrange", -4, _ADMIN, ""),
    ("bumpepoch", 2, _ADMIN, "nondeterministic_output"),
    ("count-failure-reports", 3, "admin stale", "nondeterministic_output"),
    ("countkeysinslot", 3, "stale", ""),
    ("delslots", -3, _ADMIN, ""),
    ("delslotsrange", -4, _ADMIN, ""),
    ("failover", -2, _ADMIN, ""),
    ("flushslots", 2, _ADMIN, ""),
    ("forget", 3, _ADMIN, ""),
    ("getkeysinslot", 4, "stale", "nondeterministic_output"),
    ("help", 2, "loading stale", ""),
    ("info", 2, "stale", "nondeterministic_output"),
    ("keyslot", 3, "stale", ""),
    ("links", 2, "stale", "nondeterministic_output"),
    ("meet", -4, _ADMIN, ""),
    ("myid", 2, "stale", ""),
    ("nodes", 2, "stale", "nondeterministic_output"),
    ("replicas", 3, "admin stale", "nondeterministic_output"),
    ("replicate", 3, _ADMIN, ""),
    ("reset", -2, "admin noscript stale", ""),
    ("saveconfig", 2, _ADMIN, ""),
    ("set-config-epoch", 3, _ADMIN, ""),
    ("setslot", -4, _ADMIN, ""),
    ("shards", 2, "stale", "nondeterministic_output"),
    ("slaves", 3, "admin stale", "nondeterministic_output"),
    ("slots", 2, "stale", "nondeterministic_output"),
]
for _name, _arity, _flags, _tips in _SUBCOMMANDS:
    subcommand("cluster", _name, _arity, _flags, tips=_tips)(_disabled)


@command("asking", 1, "fast", keys=(0, 0, 0), acl="connection")
def asking(client, argv):
    """Refused: this instance has cluster support disabled."""
    raise CommandError(replies.CLUSTER_DISABLED)


@command("readonly", 1, "fast loading stale", keys=(0, 0, 0), acl="connection")
def readonly(client, argv):
    """Refused: this instance has cluster support disabled."""
    raise CommandError(replies.CLUSTER_DISABLED)


@command("readwrite", 1, "fast loading stale", keys=(0, 0, 0), acl="connection")
def readwrite(client, argv):
    """Refused: this instance has cluster support disabled."""
    raise CommandError(replies.CLUSTER_DISABLED)
