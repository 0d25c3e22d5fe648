"""Pub/sub (presence/store/commands/pubsub.py and the hub's glob), differential against redis-server."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence.store.pubsub import glob_match, glob_matcher
from tests.store.helpers import Pair, array_items, run, same_replies, same_reply_sets


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def proto_pair(pair, request):
    """A pair speaking RESP2 or RESP3."""
    if request.param == 3:
        for client in (pair.store, pair.redis):
            client.call("HELLO", "3")
    return pair


@pytest.fixture
def publisher(pair):
    p = Pair(pair.store.sock.getpeername()[1], pair.redis.sock.getpeername()[1])
    yield p
    p.close()


def test_subscribe_sequence(proto_pair):
    pair = proto_pair
    same_replies(pair, 2, "SUBSCRIBE", "a", "b")
    same_replies(pair, 1, "SUBSCRIBE", "a")
    same_replies(pair, 2, "PSUBSCRIBE", "p*", "q?")
    same_replies(pair, 1, "UNSUBSCRIBE", "a")
    same_replies(pair, 1, "UNSUBSCRIBE", "nosuch")
    same_replies(pair, 1, "PUNSUBSCRIBE", "q?")
    same_replies(pair, 1, "UNSUBSCRIBE")
    same_replies(pair, 1, "PUNSUBSCRIBE")
    same_replies(pair, 1, "UNSUBSCRIBE")
    same_replies(pair, 1, "PUNSUBSCRIBE")
    run(pair, "PING", "GET missing")


def test_unsubscribe_all_replies_one_per_channel(proto_pair):
    same_replies(proto_pair, 3, "SUBSCRIBE", "x", "y", "z")
    same_reply_sets(proto_pair, 3, "UNSUBSCRIBE")
    same_replies(proto_pair, 2, "PSUBSCRIBE", "x*", "y*")
    same_reply_sets(proto_pair, 2, "PUNSUBSCRIBE")


def test_publish_delivery_and_counts(proto_pair, publisher):
    pair = proto_pair
    same_replies(pair, 2, "SUBSCRIBE", "news", "other")
    same_replies(pair, 2, "PSUBSCRIBE", "n*", "*s")
    publisher.same("PUBLISH", "news", "hello")
    same_replies(pair, 1)  # the channel message comes first,
    same_reply_sets(pair, 2)  # then the pmessages, in Redis's hash order
    publisher.same("PUBLISH", "nothing", "x")
    same_replies(pair, 1)
    publisher.same("PUBLISH", "zzz", "x")
    publisher.same("PUBLISH", "other", "")
    same_replies(pair, 2, "PING")


def test_publish_counts_every_subscriber(pair, publisher):
    third = Pair(pair.store.sock.getpeername()[1], pair.redis.sock.getpeername()[1])
    try:
        same_replies(pair, 1, "SUBSCRIBE", "c")
        same_replies(third, 2, "PSUBSCRIBE", "c", "*")
        publisher.same("PUBLISH", "c", "m")
        publisher.same("PUBLISH", "d", "m")
        publisher.same("PUBSUB", "NUMSUB", "c", "d")
        publisher.same("PUBSUB", "NUMPAT")
    finally:
        third.close()


def test_pubsub_introspection(pair, publisher):
    publisher.same("PUBSUB", "CHANNELS")
    publisher.same("PUBSUB", "NUMPAT")
    publisher.same("PUBSUB", "NUMSUB")
    same_replies(pair, 3, "SUBSCRIBE", "abc", "abd", "x")
    same_replies(pair, 2, "PSUBSCRIBE", "a*", "a*b")
    for pattern in ["*", "ab?", "x", "nomatch", "a[b]c"]:
        ours, theirs = publisher.call("PUBSUB", "CHANNELS", pattern)
        assert array_items(ours) == array_items(theirs)
    assert array_items(publisher.store.call("PUBSUB", "CHANNELS")) == array_items(
        publisher.redis.call("PUBSUB", "CHANNELS")
    )
    publisher.same("PUBSUB", "NUMSUB", "abc", "x", "none", "abc")
    publisher.same("PUBSUB", "NUMPAT")
    publisher.same("PUBSUB", "CHANNELS", "a", "b")
    publisher.same("PUBSUB", "NUMPAT", "x")
    publisher.same("PUBSUB", "NOSUCH")
    publisher.same("PUBSUB")
    publisher.same("PUBSUB", "HELP")
    publisher.same("PUBSUB", "help", "x")
    publisher.same("PUBSUB", "SHARDCHANNELS")
    publisher.same("PUBSUB", "SHARDCHANNELS", "a", "b")
    publisher.same("PUBSUB", "SHARDNUMSUB", "abc")


@pytest.mark.parametrize(
    "command",
    [
        "GET k",
        "SET k v",
        "ECHO x",
        "MULTI",
        "HELLO 3",
        "SELECT 0",
        "PUBLISH c m",
        "NOSUCHCOMMAND",
        "AUTH x",
    ],
)
def test_resp2_subscribed_context_refuses_commands(pair, command):
    same_replies(pair, 1, "SUBSCRIBE", "c")
    run(pair, command, "PING", "PING hi", "PING a b")


def test_subscribed_context_names_subcommands(pair):
    same_replies(pair, 1, "SUBSCRIBE", "c")
    run(pair, "PUBSUB NUMSUB c")


def test_resp3_subscribed_client_may_run_anything(pair):
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    same_replies(pair, 1, "SUBSCRIBE", "c")
    run(pair, "SET k v", "GET k", "PING", "PING hi", "ECHO x")


def test_psubscribe_only_context(pair):
    same_replies(pair, 1, "PSUBSCRIBE", "c*")
    run(pair, "GET k", "PING")
    same_replies(pair, 1, "PUNSUBSCRIBE")
    run(pair, "GET k", "PING")


def test_message_to_self_under_resp3(pair):
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    same_replies(pair, 1, "SUBSCRIBE", "me")
    same_replies(pair, 2, "PUBLISH", "me", "hi")  # the push, then the count


# ------------------------------------------------------------ glob patterns

SUBJECTS = [
    "\xff",
    "a\xe9b",
    "foo",
    "fao",
    "f*o",
    "f?o",
    "f\\o",
    "hello",
    "hallo",
    "hxllo",
    "a[b",
    "a]b",
    "a-b",
    "x",
    "",
    "\xe9",
    "-",
    "^",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
]


@pytest.mark.parametrize(
    "pattern, subject, expected",
    [
        ("*", "anything", True),
        ("*", "", False),
        ("", "", True),
        ("f?o", "foo", True),
        ("h[ae]llo", "hello", True),
        ("h[^e]llo", "hello", False),
        ("h[a-z]llo", "hxllo", True),
        ("h[z-a]llo", "hxllo", True),
        ("f\\*o", "f*o", True),
        ("f\\*o", "foo", False),
        ("a[b", "ab", True),
        ("a[\\]]b", "a]b", True),
        ("*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 60, False),
    ],
)
def test_glob_match_cases(pattern, subject, expected):
    assert glob_match(pattern.encode(), subject.encode()) is expected


pattern_strategy = st.text(alphabet="af*?[]^-\\xo\xe9\xff", max_size=8)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pattern=pattern_strategy)
def test_glob_matches_redis_keys(pair, pattern):
    """Random patterns over a fixed key set: KEYS on the store and on redis-server agree."""
    for client in (pair.store, pair.redis):
        if client.call("EXISTS", "foo") == b":0\r\n":
            for key in SUBJECTS:
                client.call("SET", key, "1")
    assert array_items(pair.store.call("KEYS", pattern)) == array_items(
        pair.redis.call("KEYS", pattern)
    ), pattern


@pytest.mark.parametrize(
    "pattern", ["[a-z]*", "h[^e]llo", "f\\*o", "f\\?o", "*", "?", "a[b", "[", "**"]
)
def test_psubscribe_glob_delivery(pair, publisher, pattern):
    same_replies(pair, 1, "PSUBSCRIBE", pattern)
    for channel in SUBJECTS:
        publisher.same("PUBLISH", channel, "m")
    same_replies(pair, 1, "PUNSUBSCRIBE")


def test_publish_to_self_inside_exec_under_resp3(pair):
    """Redis 7.0 writes the push as soon as it is published, in the middle of EXEC's reply."""
    for client in (pair.store, pair.redis):
        client.call("HELLO", "3")
    same_replies(pair, 1, "SUBSCRIBE", "foo")
    run(pair, "MULTI", "PUBLISH foo bar", "PUBLISH foo vaz")
    same_replies(pair, 3, "EXEC")
    run(pair, "PING")


def test_empty_channel_and_pattern(pair, publisher):
    same_replies(pair, 1, "SUBSCRIBE", "")
    same_replies(pair, 1, "PSUBSCRIBE", "")
    publisher.same("PUBLISH", "", "x")
    same_replies(pair, 2)
    same_replies(pair, 1, "UNSUBSCRIBE", "")
    same_replies(pair, 1, "PUNSUBSCRIBE", "")


NAMES = st.sampled_from(
    ["a", "b", "ab", "a.b", "x*", "a*", "*", "?b", "[ab]", "a[^b]", "\\*", "*b"]
)
SUB_ACTIONS = st.one_of(
    st.tuples(
        st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE"]),
        st.lists(NAMES, min_size=1, max_size=3),
    ),
    st.tuples(st.just("PUBLISH"), st.lists(NAMES, min_size=1, max_size=1)),
    st.tuples(st.just("PING"), st.just([])),
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(protocol=st.sampled_from(["2", "3"]), actions=st.lists(SUB_ACTIONS, min_size=1, max_size=15))
def test_random_subscription_sequences_match_redis(pair, protocol, actions):
    """Replies per step; pattern messages compared as a set (Redis delivers them in hash order)."""
    subscriber = Pair(pair.store.sock.getpeername()[1], pair.redis.sock.getpeername()[1])
    try:
        for client in (subscriber.store, subscriber.redis):
            client.call("HELLO", protocol)
        for name, args in actions:
            if name == "PUBLISH":
                count = pair.same("PUBLISH", args[0], "m")
                same_reply_sets(subscriber, int(count[1:-2]))
            else:
                same_replies(subscriber, max(1, len(args)), name, *args)
            pair.same("PUBSUB", "NUMPAT")
            pair.same("PUBSUB", "NUMSUB", "a", "b", "ab", "x*")
    finally:
        subscriber.close()


@pytest.mark.parametrize(
    "pattern",
    [b"", b"*", b"**", b"a", b"abc", b"a*", b"ab**", b"a\\*", b"a?*", b"[a]*", b"*a", b"a*b"],
)
def test_glob_matcher_answers_as_glob_match(pattern):
    """The shortcuts (literal, `prefix*`, `*`) give glob_match's answers, quirks included."""
    subjects = [b"", b"a", b"ab", b"abc", b"abcd", b"b", b"a*", b"a\\", b"ba", b"aab"]
    for subject in subjects:
        assert glob_matcher(pattern)(subject) is glob_match(pattern, subject), subject
