"""Pub/sub commands: (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBLISH, PUBSUB CHANNELS/NUMSUB/NUMPAT.

(UN)SUBSCRIBE answer with one push per channel (written directly, hence NO_REPLY),
as Redis does; under RESP3 they are `>` pushes, under RESP2 plain arrays.
"""

from __future__ import annotations

from presence.store import replies
from presence.store.commands import NO_REPLY, CommandError, command
from presence.store.pubsub import glob_match
from presence.store.resp import Push, Status

# name           arity  flags
# subscribe        -2   pubsub
# psubscribe       -2   pubsub
# unsubscribe      -1   pubsub
# punsubscribe     -1   pubsub
# publish           3   pubsub fast
# pubsub           -2   pubsub


@command("subscribe", -2, "pubsub", keys=(0, 0, 0))
def subscribe(client, argv):
    hub = client.server.hub
    for channel in argv[1:]:
        hub.subscribe(client, channel)
        client.send_push(Push([b"subscribe", channel, client.subscriptions]))
    return NO_REPLY


@command("psubscribe", -2, "pubsub", keys=(0, 0, 0))
def psubscribe(client, argv):
    hub = client.server.hub
    for pattern in argv[1:]:
        hub.psubscribe(client, pattern)
        client.send_push(Push([b"psubscribe", pattern, client.subscriptions]))
    return NO_REPLY


@command("unsubscribe", -1, "pubsub", keys=(0, 0, 0))
def unsubscribe(client, argv):
    return _unsubscribe(
        client, argv[1:], client.channels, client.server.hub.unsubscribe, b"unsubscribe"
    )


@command("punsubscribe", -1, "pubsub", keys=(0, 0, 0))
def punsubscribe(client, argv):
    return _unsubscribe(
        client, argv[1:], client.patterns, client.server.hub.punsubscribe, b"punsubscribe"
    )


def _unsubscribe(client, names, current, remove, kind: bytes):
    """Unsubscribe from `names` (all when empty); one push per name, or one with nil if none."""
    names = names or sorted(current)
    if not names:
        client.send_push(Push([kind, None, client.subscriptions]))
        return NO_REPLY
    for name in names:
        remove(client, name)
        client.send_push(Push([kind, name, client.subscriptions]))
    return NO_REPLY


@command("publish", 3, "pubsub fast", keys=(0, 0, 0))
def publish(client, argv):
    client.server.stats["pubsub_messages"] += 1
    return client.server.hub.publish(argv[1], argv[2])


@command("pubsub", -2, "pubsub", keys=(0, 0, 0))
def pubsub(client, argv):
    """PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARD* | HELP.

    Sharded pub/sub is not implemented, so there are never shard channels to report.
    """
    hub = client.server.hub
    sub = argv[1].lower()
    if sub in (b"numpat", b"help") and len(argv) != 2:
        raise CommandError(replies.wrong_arity(f"pubsub|{sub.decode()}"))
    if sub in (b"channels", b"shardchannels") and len(argv) > 3:
        raise CommandError(replies.subcommand_syntax(argv[1], "pubsub"))
    if sub == b"channels":
        pattern = argv[2] if len(argv) == 3 else None
        return [c for c in hub.channels if pattern is None or glob_match(pattern, c)]
    if sub in (b"numsub", b"shardnumsub"):
        out = []
        for channel in argv[2:]:
            out += [channel, hub.numsub(channel) if sub == b"numsub" else 0]
        return out
    if sub == b"numpat":
        return len(hub.patterns)
    if sub == b"shardchannels":
        return []
    if sub == b"help":
        return [Status(line) for line in _HELP]
    raise CommandError(replies.unknown_subcommand(argv[1], "pubsub"))


_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]
