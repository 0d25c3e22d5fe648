"""What happens within one event-loop turn: when replies are written, when keys expire.

Redis answers a loop turn's reads in one burst of writes (beforeSleep); the store does the
same (`Server.write_held`). These tests drive `Client` objects over recording transports
inside a running loop, so "the end of the turn" is one `await asyncio.sleep(0)`, and check
what a held reply must never do: be lost, be reordered behind a later push or unblocked
reply, or be cut off by a close. The last test checks that an expiry falling due while a
long pipeline runs is announced between two of its batches, not after it.
"""

import asyncio

from presence.store.config import Config
from presence.store.server import Client, Server
from tests.store.rawclient import encode_command


class RecordingTransport(asyncio.Transport):
    """Keeps every write; closing and aborting are recorded, not acted on."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data) -> None:
        assert not self.closed and not self.aborted, "write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 6380)}.get(
            name, default
        )

    @property
    def output(self) -> bytes:
        return b"".join(self.writes)


def commands(*argvs) -> bytes:
    return b"".join(encode_command(argv) for argv in argvs)


def connect(server: Server) -> tuple[Client, RecordingTransport]:
    client, transport = Client(server), RecordingTransport()
    client.connection_made(transport)
    return client, transport


def run(scenario) -> None:
    async def main():
        await scenario(Server(Config()))

    asyncio.run(main())


def test_every_read_of_a_turn_comes_before_any_write():
    async def scenario(server):
        (a, ta), (b, tb) = connect(server), connect(server)
        a.data_received(commands(("SET", "k", "v"), ("GET", "k")))
        b.data_received(commands(("PING",)))
        assert ta.writes == tb.writes == []  # held until the turn ends
        await asyncio.sleep(0)
        assert ta.writes == [b"+OK\r\n$1\r\nv\r\n"]  # one write per connection and turn
        assert tb.writes == [b"+PONG\r\n"]

    run(scenario)


def test_two_reads_in_one_turn_are_written_in_order_in_one_write():
    async def scenario(server):
        a, ta = connect(server)
        a.data_received(commands(("INCR", "n")))
        a.data_received(commands(("INCR", "n")))
        await asyncio.sleep(0)
        assert ta.writes == [b":1\r\n:2\r\n"]

    run(scenario)


def test_a_held_reply_goes_before_the_reply_of_an_unblocked_pop():
    async def scenario(server):
        (a, ta), (b, tb) = connect(server), connect(server)
        a.data_received(commands(("PING",), ("BLPOP", "q", "0")))
        b.data_received(commands(("RPUSH", "q", "x")))  # same turn: A is answered at once
        assert ta.output == b"+PONG\r\n*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
        await asyncio.sleep(0)
        assert tb.output == b":1\r\n"

    run(scenario)


def test_a_held_reply_goes_before_a_message_published_in_the_same_turn():
    async def scenario(server):
        (a, ta), (b, tb) = connect(server), connect(server)
        a.data_received(commands(("SUBSCRIBE", "news")))
        b.data_received(commands(("PUBLISH", "news", "hi")))
        await asyncio.sleep(0)
        assert ta.output == (
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        )
        assert tb.output == b":1\r\n"

    run(scenario)


def test_quit_and_a_protocol_error_write_their_replies_before_closing():
    async def scenario(server):
        (a, ta), (b, tb) = connect(server), connect(server)
        a.data_received(commands(("PING",), ("QUIT",), ("PING",)))
        b.data_received(commands(("PING",)) + b"*1\r\n$x\r\n")
        assert ta.output == b"+PONG\r\n+OK\r\n" and ta.closed
        assert tb.output == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" and tb.closed
        await asyncio.sleep(0)  # nothing more, and no write after the close
        assert ta.output == b"+PONG\r\n+OK\r\n"

    run(scenario)


def test_a_connection_lost_before_the_end_of_the_turn_costs_the_others_nothing():
    async def scenario(server):
        (a, ta), (b, tb) = connect(server), connect(server)
        a.data_received(commands(("SET", "k", "1")))
        b.data_received(commands(("GET", "k")))
        ta.abort()
        a.connection_lost(None)
        await asyncio.sleep(0)
        assert ta.writes == []  # dropped with the connection
        assert tb.output == b"$1\r\n1\r\n"
        assert server.keyspace.dbs[0].get(b"k") == b"1"  # the command itself did run

    run(scenario)


def test_server_close_writes_what_is_held():
    async def scenario(server):
        a, ta = connect(server)
        a.data_received(commands(("PING",)))
        await server.close()
        assert ta.output == b"+PONG\r\n" and ta.closed

    run(scenario)


class TickingClock:
    """A clock that moves 1 ms each time it is read."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


def test_an_expiry_due_during_a_long_pipeline_is_announced_before_the_pipeline_ends():
    clock = TickingClock()

    async def main():
        config = Config()
        config.set("keys-expire-notify", "gone", startup=True)
        server = Server(config, clock=clock)
        (a, _), (b, tb) = connect(server), connect(server)
        b.data_received(commands(("SUBSCRIBE", "gone")))
        await asyncio.sleep(0)
        subscribed = tb.output
        a.data_received(commands(("SET", "k", "v", "PX", "5")))
        await asyncio.sleep(0)
        seen_by_b = []  # how many replies A had when B was told
        tb.write = lambda data: seen_by_b.append(len(a._out or ()))
        a.data_received(
            commands(*[("GET", "x")] * 64 * 20)
        )  # 20 batches, the clock moves per batch
        assert seen_by_b and 0 < seen_by_b[0] < 64 * 20  # announced mid-pipeline, not after it
        assert server.keyspace.dbs[0].data.get(b"k") is None
        assert subscribed.startswith(b"*3\r\n$9\r\nsubscribe")

    asyncio.run(main())


def test_a_command_that_changes_the_session_governs_the_next_one_in_the_same_read():
    # Data commands skip the gate while a connection is plain (Client.plain); MULTI,
    # SUBSCRIBE and CLIENT REPLY in the middle of a pipeline must end that at once.
    async def scenario(server):
        (a, ta), (b, tb), (c, tc) = connect(server), connect(server), connect(server)
        a.data_received(commands(("MULTI",), ("SET", "k", "v"), ("EXEC",), ("GET", "k")))
        b.data_received(commands(("SUBSCRIBE", "ch"), ("GET", "k")))
        c.data_received(
            commands(
                ("CLIENT", "REPLY", "OFF"), ("GET", "k"), ("CLIENT", "REPLY", "ON"), ("GET", "k")
            )
        )
        await asyncio.sleep(0)
        assert ta.output == b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$1\r\nv\r\n"
        assert tb.output.endswith(
            b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE"
            b" / PING / QUIT / RESET are allowed in this context\r\n"
        )
        assert tc.output == b"+OK\r\n$1\r\nv\r\n"

    run(scenario)


def test_a_connection_made_under_requirepass_runs_data_commands_once_it_is_cleared():
    async def scenario(server):
        server.config.set("requirepass", "s3cret")
        a, ta = connect(server)
        admin, tadmin = connect(server)
        a.data_received(commands(("GET", "k")))
        admin.data_received(commands(("AUTH", "s3cret"), ("CONFIG", "SET", "requirepass", "")))
        await asyncio.sleep(0)
        a.data_received(commands(("SET", "k", "v"), ("GET", "k")))
        await asyncio.sleep(0)
        assert ta.output == b"-NOAUTH Authentication required.\r\n+OK\r\n$1\r\nv\r\n"
        assert tadmin.output == b"+OK\r\n+OK\r\n"

    run(scenario)


def test_the_expiry_timer_waits_to_a_fraction_of_a_millisecond(monkeypatch):
    # The wall clock's readings are whole milliseconds, cut down; a delay computed from
    # one would make every expiry up to 1 ms late. 1,000,000.7 ms now, deadline 1,000,002:
    server = Server(Config())
    monkeypatch.setattr("presence.store.server.time.time", lambda: 1000.0007)
    assert abs(server._seconds_until(1_000_002) - 0.0013) < 1e-9
