"""Every fixed reply string the store sends, copied from Redis 7 so clients see the same text.

Error texts are differential-tested against a real redis-server (tests/store/).
"""
from presence.store.resp import Error

WRONGTYPE = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
SYNTAX = Error("ERR syntax error")
NOT_INTEGER = Error("ERR value is not an integer or out of range")
NOT_FLOAT = Error("ERR value is not a valid float")
OVERFLOW = Error("ERR increment or decrement would overflow")
NO_SUCH_KEY = Error("ERR no such key")
INDEX_OUT_OF_RANGE = Error("ERR index out of range")
NOAUTH = Error("NOAUTH Authentication required.")
WRONGPASS = Error("WRONGPASS invalid username-password pair or user is disabled.")
AUTH_NOT_CONFIGURED = Error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?")
DB_INDEX_OUT_OF_RANGE = Error("ERR DB index is out of range")
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
NESTED_MULTI = Error("ERR MULTI calls can not be nested")
EXEC_WITHOUT_MULTI = Error("ERR EXEC without MULTI")
DISCARD_WITHOUT_MULTI = Error("ERR DISCARD without MULTI")
WATCH_IN_MULTI = Error("ERR WATCH inside MULTI is not allowed")
EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")
NOPROTO = Error("NOPROTO unsupported protocol version")
TIMEOUT_NOT_FLOAT = Error("ERR timeout is not a float or out of range")
TIMEOUT_NEGATIVE = Error("ERR timeout is negative")
SUBSCRIBED_CONTEXT = (
    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
    "are allowed in this context")


def wrong_arity(name: str) -> Error:
    """ERR wrong number of arguments for 'get' command."""
    return Error(f"ERR wrong number of arguments for '{name.lower()}' command")


def unknown_command(name: bytes, args: list[bytes]) -> Error:
    """Redis's exact text: the name and up to the first 128 bytes of arguments, each quoted."""
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += "'" + _printable(arg[:128 - len(shown)]) + "' "
    return Error(f"ERR unknown command '{_printable(name[:128])}', with args beginning with: {shown}")


def unknown_subcommand(sub: bytes, command: str) -> Error:
    """ERR unknown subcommand 'x'. Try CONFIG HELP."""
    return Error(f"ERR unknown subcommand '{_printable(sub[:128])}'. Try {command.upper()} HELP.")


def _printable(raw: bytes) -> str:
    # Redis maps CR and LF to spaces so an error reply stays one line
    return raw.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
