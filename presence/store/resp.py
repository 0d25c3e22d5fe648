"""Sans-IO RESP codec: request bytes in, commands out; reply values in, bytes out.

Nothing here touches a socket or an event loop. `RequestParser.feed()` takes whatever
bytes arrived; `next_command()` returns one command (a list of bytes arguments) or
`None` when it needs more data. Both multibulk (`*2\\r\\n$3\\r\\nGET...`) and inline
(`GET key\\r\\n`, as typed in telnet) requests are understood, mixed freely in one
pipeline, like Redis. Malformed input raises `ProtocolError` with Redis's own wording;
the caller replies with it and closes the connection.

Replies are plain Python values encoded by `encode(value, protocol)`:

=====================  ==========================  ======================
value                  RESP2                       RESP3
=====================  ==========================  ======================
bytes / str            bulk string                 bulk string
int                    integer                     integer
None                   nil bulk ``$-1``            null ``_``
NIL_ARRAY              nil array ``*-1``           null ``_``
list / tuple           array                       array
Status("OK")           ``+OK``                     ``+OK``
Error("ERR x")         ``-ERR x``                  ``-ERR x``
dict                   flat array k1 v1 k2 v2      map ``%``
Set(...)               array                       set ``~``
Double(1.5)            bulk string ``1.5``         double ``,``
Push([...])            array                       push ``>``
Verbatim("txt")        bulk string                 verbatim ``=``
bool                   integer 1/0                 boolean ``#t``/``#f``
=====================  ==========================  ======================
"""

from __future__ import annotations

import math
import re
from itertools import chain

try:
    import hiredis as _hiredis
except ImportError:  # the reference parser alone is complete, just slower
    _hiredis = None

__all__ = [
    "NIL_ARRAY",
    "OK",
    "PONG",
    "QUEUED",
    "Double",
    "Error",
    "ProtocolError",
    "Push",
    "RequestParser",
    "Set",
    "Status",
    "Verbatim",
    "encode",
]

DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024  # proto-max-bulk-len, as in Redis
MAX_INLINE_LEN = 64 * 1024  # PROTO_INLINE_MAX_SIZE
MAX_MULTIBULK_LEN = 2147483647  # INT_MAX: Redis refuses a larger argument count
UNAUTHENTICATED_MAX_ARGS = 10  # before AUTH, Redis refuses a larger argument count...
UNAUTHENTICATED_MAX_BULK = 16384  # ... or a longer argument, as soon as the header is read


class ProtocolError(Exception):
    """The peer sent bytes that are not RESP; the message is Redis's own error text."""


class Status(str):
    """A simple-string reply (`+OK`)."""

    __slots__ = ()


class Error(str):
    """An error reply; the text starts with its code (`ERR`, `WRONGTYPE`, ...)."""

    __slots__ = ()


class Double(float):
    """A floating-point reply: a RESP3 double, or a bulk string under RESP2."""

    __slots__ = ()


class DoubleText(bytes):
    """A double reply given as its text (GEOPOS's `%.17Lf` coordinates): a RESP3 double, or
    a bulk string under RESP2."""

    __slots__ = ()


class Set(list):
    """A set reply: RESP3 `~`, a plain array under RESP2."""

    __slots__ = ()


class Push(list):
    """An out-of-band push (pub/sub message): RESP3 `>`, a plain array under RESP2."""

    __slots__ = ()


class Verbatim(str):
    """A verbatim text reply (INFO, CLIENT LIST): RESP3 `=txt:`, a bulk string under RESP2."""

    __slots__ = ()


class Raw(bytes):
    """A reply already encoded as RESP, sent as it is (a script's result, built by its Lua side)."""

    __slots__ = ()


class _NilArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NIL_ARRAY"


NIL_ARRAY = _NilArray()
BULK_HEADER_CACHE = 1024
BULK_HEADERS = tuple(b"$%d\r\n" % n for n in range(BULK_HEADER_CACHE))  # formatting costs more
_PLUS, _EQUALS = ord("+"), ord("=")
_PROBE = b"*0\r\n"  # an empty multibulk, fed after each chunk: hiredis returns [] for it
_DECIMAL, _MULTIBULK_HEADER = b"%d", b"*%d\r\n"
_join = b"".join
OK = Status("OK")
PONG = Status("PONG")
QUEUED = Status("QUEUED")


class RequestParser:
    """Incremental parser of client requests; see the module docstring.

    The pure-Python parser (`_next_reference`) is the reference: it gives Redis's
    exact error texts, understands inline commands, and refuses a bulk argument longer
    than `max_bulk_len`, an inline line longer than 64 KiB or a multibulk count over
    INT_MAX as soon as the header is seen. While `authenticated` is False (a client that
    owes AUTH) it also refuses more than 10 arguments or an argument over 16 KiB, at the
    header, so an unauthenticated peer cannot make the server buffer much; the caller
    then reads one command at a time, so an AUTH lifts the limits for the next one.

    When hiredis is installed, a chunk that arrives while nothing is pending and starts
    with '*' goes through hiredis's C reader instead (about 15x faster). The chunk is
    kept until hiredis has returned every command in it. Anything hiredis would read
    differently from Redis (an error, an inline command, a non-bulk element, a command
    cut by the end of the chunk) hands the rest of the chunk to the reference parser:
    both paths yield the same commands and the same errors.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "max_bulk_len",
        "_args",
        "_remaining",
        "_bulk_len",
        "_accelerate",
        "_reader",
        "_gets",
        "_chunk",
        "_ready",
        "error",
        "authenticated",
    )

    def __init__(
        self,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        accelerate: bool = True,
        authenticated: bool = True,
    ) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_bulk_len = max_bulk_len
        self._args: list[bytes] | None = None  # arguments of a multibulk in progress
        self._remaining = 0  # arguments still expected
        self._bulk_len = -1  # length of the bulk being waited for
        self._accelerate = accelerate and _hiredis is not None
        self._reader = _hiredis.Reader() if self._accelerate else None
        self._gets = self._reader.gets if self._accelerate else None
        self._chunk: bytes | None = None  # the chunk hiredis was fed (with _PROBE after it), if any
        self._ready: list[list[bytes]] = []  # parsed (or given back) and not yet taken
        self.error: ProtocolError | None = (
            None  # malformed input met (after the commands before it)
        )
        self.authenticated = authenticated  # False: the unauthenticated limits apply

    def feed(self, data: bytes) -> None:
        """Append received bytes; never raises."""
        if not data:
            return
        if (
            self._chunk is not None
        ):  # hiredis has not read the previous chunk: the reference parser will
            self._to_reference(0)
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        if not self._buf and self._args is None and self._fits_hiredis(data):
            self._reader.feed(data + _PROBE)
            self._chunk = data
            return
        self._buf += data

    def _fits_hiredis(self, data) -> bool:
        """Whether `data`, starting at a command boundary, may go to hiredis's reader."""
        # hiredis reads +/= elements as bulk strings, Redis refuses them: such chunks go to
        # the reference parser. One-byte searches first, for an int (43 in data is a memchr;
        # b"+" in data first tries the bytes as an int and raises, which costs 8x as much).
        return (
            self._accelerate
            and self.authenticated  # hiredis would buffer what the limits refuse at the header
            and data[:1] == b"*"
            and _LARGE_COUNT.search(data) is None
            and (
                (_PLUS not in data and _EQUALS not in data)
                or (data.find(b"\n+") < 0 and data.find(b"\n=") < 0)
            )
        )

    def buffered(self) -> int:
        """How many received bytes are not yet consumed (for CLIENT LIST `qbuf`)."""
        return len(self._chunk or b"") + len(self._buf) - self._pos + _encoded_total(self._ready)

    def unread(self, commands: list[list[bytes]]) -> None:
        """Give back commands taken but not run (a client blocked mid-pipeline); they come first."""
        self._ready[:0] = commands

    def next_command(self) -> list[bytes] | None:
        """Return the next complete command, or None if more bytes are needed.

        Empty inline lines and empty multibulks are skipped, as Redis does.
        Raises ProtocolError once the commands before a fault have been returned.
        """
        if not self._ready:
            self._ready = self.read_commands()
            if not self._ready:
                if self.error is not None:
                    raise self.error
                return None
        return self._ready.pop(0)

    def read_commands(self, limit: int = 1 << 62) -> list[list[bytes]]:
        """The complete commands buffered, in order, at most `limit`; [] when more bytes are needed.

        Fewer than `limit` means every complete command was returned. Never raises: at
        malformed input it returns the commands before the fault and sets `error` (a
        ProtocolError with Redis's text), which stays set.
        """
        commands = self._ready
        self._ready = []
        if len(commands) < limit and self.error is None:
            if self._chunk is not None:
                commands += self._read_chunk()
            if self._chunk is None and (self._args is not None or self._pos < len(self._buf)):
                commands += self._read_reference(limit - len(commands))
        if len(commands) > limit:
            self._ready = commands[limit:]
            del commands[limit:]
        return commands

    def take(self, data: bytes, limit: int = 1 << 62) -> list[list[bytes]]:
        """`feed(data)`, then `read_commands(limit)`, in one call.

        The common case (an idle parser, a chunk of whole multibulk commands that hiredis
        may read) is one pass of hiredis over the chunk: a server's read loop calls this
        once per read, so it skips the bookkeeping of the general path.
        """
        if (
            self._chunk is None
            and not self._ready
            and self._args is None
            and self.error is None
            and self._pos == len(self._buf)
            and self._accelerate
            and self.authenticated
            and data
            and data[0] == 42
            and ((_PLUS not in data and _EQUALS not in data) or self._fits_hiredis(data))
            and _LARGE_COUNT.search(data) is None
        ):
            self._reader.feed(data + _PROBE)
            self._chunk = data
            commands = self._read_chunk()
            if self._chunk is None and self._pos == len(self._buf) and len(commands) <= limit:
                return commands  # the whole chunk, up to a command boundary
            self._ready = commands
            return self.read_commands(limit)
        self.feed(data)
        return self.read_commands(limit)

    def _read_chunk(self) -> list[list[bytes]]:
        """The commands hiredis reads from the current chunk (fed with `_PROBE` after it);
        hands the rest over to the reference parser at anything it would read differently.

        On a command boundary hiredis reads the probe, `*0`, as []: the chunk was read
        whole. A chunk cut mid-command takes the probe's bytes into its last command
        instead; a command those bytes completed is not the client's, and is dropped.
        """
        gets = self._gets
        commands = []
        try:
            cmd = gets()
            while cmd.__class__ is list and cmd:
                _join(cmd)  # TypeError unless every argument is a bulk string
                commands.append(cmd)
                cmd = gets()
            if cmd.__class__ is list and not self._reader.has_data():
                self._chunk = None  # that [] was the probe
                return commands
        except (_hiredis.ProtocolError, TypeError):
            pass
        consumed = _encoded_total(commands)
        if consumed > len(self._chunk):
            consumed -= _encoded_total(commands[-1:])
            del commands[-1]
        self._to_reference(consumed)
        return commands

    def _read_reference(self, limit: int) -> list[list[bytes]]:
        """Up to `limit` commands from the reference parser (then hiredis again, when the
        rest of a long buffer starts on a command boundary)."""
        commands = []
        try:
            while len(commands) < limit:
                cmd = self._next_reference()
                if cmd is None:
                    break
                commands.append(cmd)
                if self._args is None and len(self._buf) - self._pos > 1024:
                    rest = self._buf[self._pos :]
                    if self._fits_hiredis(rest):
                        self._buf = bytearray()
                        self._pos = 0
                        self.feed(bytes(rest))
                        commands += self._read_chunk()  # goes on here if hiredis hands back
        except ProtocolError as exc:
            self.error = exc.with_traceback(None)  # its frames would hold this parser in a cycle
        return commands

    def _to_reference(self, consumed: int) -> None:
        """Hand the current chunk, after its first `consumed` bytes, to the reference parser."""
        chunk = self._chunk
        self._chunk = None
        self._reader = _hiredis.Reader()  # the old one is mid-message, broken or holds the probe
        self._gets = self._reader.gets
        self._buf = bytearray(chunk[consumed:])
        self._pos = 0

    def _next_reference(self) -> list[bytes] | None:
        while True:
            if self._args is not None:
                return self._continue_multibulk()
            buf = self._buf
            pos = self._pos
            if pos >= len(buf):
                self._compact()
                return None
            if buf[pos] == 42:  # '*'
                cmd = self._start_multibulk()
            else:
                cmd = self._inline()
            if cmd is None:
                return None
            if cmd:
                return cmd

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _line(self, limit: int, what: str, newline: bytes = b"\r") -> bytes | None:
        """Read one header line at the cursor (without its terminator), or None.

        Like Redis, a multibulk header ends at CR and the byte after it is taken to be
        LF; an inline request ends at LF.
        """
        buf = self._buf
        end = buf.find(newline, self._pos)
        skip = 2 if newline == b"\r" else 1
        if end < 0 or end + skip > len(buf):
            if len(buf) - self._pos > limit:
                raise ProtocolError(f"Protocol error: too big {what}")
            self._compact()
            return None
        line = bytes(buf[self._pos : end])
        self._pos = end + skip
        return line

    def _start_multibulk(self) -> list[bytes] | None:
        line = self._line(MAX_INLINE_LEN, "mbulk count string")
        if line is None:
            return None
        count = _parse_length(line[1:])
        if count is None or count > MAX_MULTIBULK_LEN:
            raise ProtocolError("Protocol error: invalid multibulk length")
        if count > UNAUTHENTICATED_MAX_ARGS and not self.authenticated:
            raise ProtocolError("Protocol error: unauthenticated multibulk length")
        if count <= 0:
            return []  # Redis ignores '*0' and '*-1' requests
        self._args = []
        self._remaining = count
        return self._continue_multibulk()

    def _continue_multibulk(self) -> list[bytes] | None:
        buf = self._buf
        args = self._args
        while self._remaining:
            if self._bulk_len < 0:
                pos = self._pos
                if pos >= len(buf):
                    self._compact()
                    return None
                line = self._line(MAX_INLINE_LEN, "bulk count string")
                if line is None:
                    return None
                if line[:1] != b"$":  # Redis quotes the byte at the cursor, even the CR itself
                    raise ProtocolError(
                        f"Protocol error: expected '$', got '{_shown(buf[pos : pos + 1])}'"
                    )
                n = _parse_length(line[1:])
                if n is None or n < 0 or n > self.max_bulk_len:
                    raise ProtocolError("Protocol error: invalid bulk length")
                if n > UNAUTHENTICATED_MAX_BULK and not self.authenticated:
                    raise ProtocolError("Protocol error: unauthenticated bulk length")
                self._bulk_len = n
            n = self._bulk_len
            pos = self._pos
            if len(buf) - pos < n + 2:
                self._compact()
                return None
            args.append(bytes(buf[pos : pos + n]))
            self._pos = pos + n + 2
            self._bulk_len = -1
            self._remaining -= 1
        self._args = None
        return args

    def _inline(self) -> list[bytes] | None:
        # Redis ends an inline request at LF, dropping a CR before it
        line = self._line(MAX_INLINE_LEN, "inline request", b"\n")
        if line is None:
            return None
        if line.endswith(b"\r"):
            line = line[:-1]
        return split_inline(line)


_LENGTH = re.compile(rb"0|-?[1-9][0-9]{0,18}")
# hiredis allocates an argument count's list as soon as it reads the header (8 bytes per
# argument: 16 GiB for *2147483647), so a chunk that may announce 100,000 arguments or
# more goes to the reference parser, which only grows its list as arguments arrive
_LARGE_COUNT = re.compile(rb"\*[0-9]{6}")


def _shown(raw: bytes) -> str:
    """A raw byte for an error text: CR/LF as spaces, others kept (surrogate-escaped)."""
    return raw.replace(b"\r", b" ").replace(b"\n", b" ").decode("utf-8", "surrogateescape")


def _parse_length(text: bytes) -> int | None:
    """A count or length as Redis's string2ll reads it (no '+', spaces or leading zeros)."""
    if _LENGTH.fullmatch(text) is None:
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None


def _encoded_total(commands: list[list[bytes]]) -> int:
    """Bytes of the canonical multibulk encoding of all `commands` (what hiredis read to
    return them); C-level iteration, as this runs over whole 64 KiB reads."""
    lengths = list(map(len, chain.from_iterable(commands)))
    return (
        sum(lengths)
        + 5 * len(lengths)
        + sum(map(len, map(_DECIMAL.__mod__, lengths)))
        + sum(map(len, map(_MULTIBULK_HEADER.__mod__, map(len, commands))))
    )


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request like Redis's sdssplitargs: quotes, escapes, whitespace.

    Raises ProtocolError("Protocol error: unbalanced quotes in request").
    """
    if b'"' not in line and b"'" not in line:
        return line.split()
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\x0b\x0c":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and _ishex(line[i + 2])
                    and _ishex(line[i + 3])
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append({110: 10, 114: 13, 116: 9, 98: 8, 97: 7}.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\x0b\x0c":
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\x0b\x0c":
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\n\r\x0b\x0c":
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


def _ishex(c: int) -> bool:
    return c in b"0123456789abcdefABCDEF"


# ---------------------------------------------------------------- encoding


def _bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def format_double(value: float) -> bytes:
    """Format a float as Redis 7.0's addReplyDouble does: `%.17g`, with inf/-inf/nan."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"nan"
    return b"%.17g" % value


def encode(value, protocol: int = 2) -> bytes:
    """Encode one reply value (see the module table) for a RESP2 or RESP3 client."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if t is Status:
        return b"+%s\r\n" % value.encode("utf-8", "surrogateescape")
    if t is int:
        return b":%d\r\n" % value
    if value is None:
        return b"_\r\n" if protocol == 3 else b"$-1\r\n"
    if t is list or t is tuple:
        return b"*%d\r\n" % len(value) + b"".join([encode(v, protocol) for v in value])
    if t is Error:  # error texts may quote raw argument bytes, surrogate-escaped
        return b"-%s\r\n" % value.encode("utf-8", "surrogateescape")
    if t is str:
        return _bulk(value.encode())
    if t is bool:
        if protocol == 3:
            return b"#t\r\n" if value else b"#f\r\n"
        return b":1\r\n" if value else b":0\r\n"
    if t is dict:
        parts = [encode(k, protocol) + encode(v, protocol) for k, v in value.items()]
        head = b"%%%d\r\n" % len(value) if protocol == 3 else b"*%d\r\n" % (2 * len(value))
        return head + b"".join(parts)
    if t is Set:
        head = b"~%d\r\n" if protocol == 3 else b"*%d\r\n"
        return head % len(value) + b"".join([encode(v, protocol) for v in value])
    if t is Push:
        head = b">%d\r\n" if protocol == 3 else b"*%d\r\n"
        return head % len(value) + b"".join([encode(v, protocol) for v in value])
    if t is Double or t is float:
        text = format_double(value)
        return b",%s\r\n" % text if protocol == 3 else _bulk(text)
    if t is Verbatim:  # INFO: may quote error codes of raw bytes, surrogate-escaped
        data = value.encode("utf-8", "surrogateescape")
        if protocol == 3:
            return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
        return _bulk(data)
    if value is NIL_ARRAY:
        return b"_\r\n" if protocol == 3 else b"*-1\r\n"
    if t is Raw:
        return value
    if t is DoubleText:
        return b",%s\r\n" % value if protocol == 3 else _bulk(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bulk(bytes(value))
    raise TypeError(f"cannot encode {t.__name__} as RESP")
