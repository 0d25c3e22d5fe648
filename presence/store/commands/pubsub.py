"""Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, (S)PUBLISH, PUBSUB and its subcommands.

(UN)SUBSCRIBE answer with one push per channel (written directly, hence NO_REPLY),
as Redis does; under RESP3 they are `>` pushes, under RESP2 plain arrays.

Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH) behaves as in a non-cluster Redis
7.0: shard channels are a namespace apart from channels, patterns never match them, and
the count in `ssubscribe`/`sunsubscribe` replies is the client's shard channels only
(the one in `subscribe`/`psubscribe` replies leaves them out). Any subscription puts a
RESP2 client in the subscribed context.
"""

from __future__ import annotations

from presence.store import replies
from presence.store.commands import NO_REPLY, CommandError, command, run_subcommand, subcommand
from presence.store.commands.server import help_for
from presence.store.pubsub import glob_match
from presence.store.resp import Push

# name           arity  flags                              key spec
# subscribe        -2   pubsub noscript loading stale      -
# psubscribe       -2   pubsub noscript loading stale      -
# ssubscribe       -2   pubsub noscript loading stale      1..-1 not_key
# unsubscribe      -1   pubsub noscript loading stale      -
# punsubscribe     -1   pubsub noscript loading stale      -
# sunsubscribe     -1   pubsub noscript loading stale      1..-1 not_key
# publish           3   pubsub loading stale fast          -
# spublish          3   pubsub loading stale fast          1 not_key
# pubsub           -2   -            (help, numsub, channels, numpat, shardchannels, shardnumsub)

_SUBSCRIBE_FLAGS = "pubsub noscript loading stale"
_PUBLISH_FLAGS = "pubsub loading stale fast"


@command("subscribe", -2, _SUBSCRIBE_FLAGS, keys=(0, 0, 0))
def subscribe(client, argv):
    hub = client.server.hub
    for channel in argv[1:]:
        hub.subscribe(client, channel)
        client.send_push(Push([b"subscribe", channel, client.subscriptions]))
    return NO_REPLY


@command("psubscribe", -2, _SUBSCRIBE_FLAGS, keys=(0, 0, 0))
def psubscribe(client, argv):
    hub = client.server.hub
    for pattern in argv[1:]:
        hub.psubscribe(client, pattern)
        client.send_push(Push([b"psubscribe", pattern, client.subscriptions]))
    return NO_REPLY


@command("ssubscribe", -2, _SUBSCRIBE_FLAGS, keys=(1, -1, 1), not_key=True)
def ssubscribe(client, argv):
    """SSUBSCRIBE shardchannel [...]: one `ssubscribe` push each, counting shard channels.

    Refused inside EXEC (Redis 7.0 refuses it to a DENY_BLOCKING client, and unlike
    SUBSCRIBE makes no exception for MULTI); EXEC is then the command being run.
    """
    if client.last_command != "ssubscribe":
        raise CommandError(replies.SSUBSCRIBE_DENY_BLOCKING)
    hub = client.server.hub
    for channel in argv[1:]:
        hub.ssubscribe(client, channel)
        client.send_push(Push([b"ssubscribe", channel, len(client.shard_channels)]))
    return NO_REPLY


@command("unsubscribe", -1, _SUBSCRIBE_FLAGS, keys=(0, 0, 0))
def unsubscribe(client, argv):
    hub = client.server.hub
    return _unsubscribe(client, argv[1:], client.channels, hub.unsubscribe, b"unsubscribe")


@command("punsubscribe", -1, _SUBSCRIBE_FLAGS, keys=(0, 0, 0))
def punsubscribe(client, argv):
    hub = client.server.hub
    return _unsubscribe(client, argv[1:], client.patterns, hub.punsubscribe, b"punsubscribe")


@command("sunsubscribe", -1, _SUBSCRIBE_FLAGS, keys=(1, -1, 1), not_key=True)
def sunsubscribe(client, argv):
    hub = client.server.hub
    return _unsubscribe(
        client, argv[1:], client.shard_channels, hub.sunsubscribe, b"sunsubscribe", shard=True
    )


def _unsubscribe(client, names, current, remove, kind: bytes, shard: bool = False):
    """Unsubscribe from `names` (all when empty); one push per name, or one with nil if none.

    Each push carries the count left: shard channels for SUNSUBSCRIBE, channels and
    patterns for the others.
    """

    def count() -> int:
        return len(client.shard_channels) if shard else client.subscriptions

    names = names or sorted(current)
    if not names:
        client.send_push(Push([kind, None, count()]))
        return NO_REPLY
    for name in names:
        remove(client, name)
        client.send_push(Push([kind, name, count()]))
    return NO_REPLY


@command("publish", 3, _PUBLISH_FLAGS, keys=(0, 0, 0))
def publish(client, argv):
    client.server.stats["pubsub_messages"] += 1
    return client.server.hub.publish(argv[1], argv[2])


@command("spublish", 3, _PUBLISH_FLAGS, keys=(1, 1, 1), not_key=True)
def spublish(client, argv):
    """SPUBLISH shardchannel message: `smessage` to the shard channel's subscribers only."""
    client.server.stats["pubsub_messages"] += 1
    return client.server.hub.spublish(argv[1], argv[2])


# ---------------------------------------------------------------- PUBSUB


@command("pubsub", -2, "", keys=(0, 0, 0))
def pubsub(client, argv):
    """PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP."""
    return run_subcommand("pubsub", client, argv)


# COMMAND INFO pubsub lists these in registration order (Redis: in its dict's order)
subcommand("pubsub", "help", 2, "loading stale")(
    help_for(
        "pubsub",
        [
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> "
            "(default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    )
)


@subcommand("pubsub", "numsub", -2, "pubsub loading stale")
def pubsub_numsub(client, argv):
    hub = client.server.hub
    out = []
    for channel in argv[2:]:
        out += [channel, hub.numsub(channel)]
    return out


@subcommand("pubsub", "channels", -2, "pubsub loading stale")
def pubsub_channels(client, argv):
    return _channel_list(argv, client.server.hub.channels)


@subcommand("pubsub", "numpat", 2, "pubsub loading stale")
def pubsub_numpat(client, argv):
    return len(client.server.hub.patterns)


@subcommand("pubsub", "shardchannels", -2, "pubsub loading stale")
def pubsub_shardchannels(client, argv):
    return _channel_list(argv, client.server.hub.shard_channels)


@subcommand("pubsub", "shardnumsub", -2, "pubsub loading stale")
def pubsub_shardnumsub(client, argv):
    hub = client.server.hub
    out = []
    for channel in argv[2:]:
        out += [channel, hub.shardnumsub(channel)]
    return out


def _channel_list(argv, channels: dict) -> list[bytes]:
    """The active channels of `channels`, those matching argv[2] if given."""
    if len(argv) > 3:
        raise CommandError(replies.subcommand_syntax(argv[1], "pubsub"))
    pattern = argv[2] if len(argv) == 3 else None
    return [c for c in channels if pattern is None or glob_match(pattern, c)]
