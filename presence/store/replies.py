"""Every fixed reply string the store sends, copied from Redis 7 so clients see the same text.

Error texts are differential-tested against a real redis-server (tests/store/).
"""

from presence.store.resp import Error


class CommandError(Exception):
    """Raised by a handler (or a parser in presence.store.numbers) to answer with an error reply."""

    def __init__(self, reply: Error | str) -> None:
        super().__init__(reply)
        self.reply = Error(reply)


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
    "Are you sure your configuration is correct?"
)
DB_INDEX_OUT_OF_RANGE = Error("ERR DB index is out of range")
INT_OUT_OF_RANGE = Error("ERR value is out of range, value must between -2147483648 and 2147483647")
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
NESTED_MULTI = Error("ERR MULTI calls can not be nested")
EXEC_WITHOUT_MULTI = Error("ERR EXEC without MULTI")
DISCARD_WITHOUT_MULTI = Error("ERR DISCARD without MULTI")
WATCH_IN_MULTI = Error("ERR WATCH inside MULTI is not allowed")
NOT_IN_MULTI = Error("ERR Command not allowed inside a transaction")
EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")
NOPROTO = Error("NOPROTO unsupported protocol version")
HELLO_NOAUTH = Error(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time"
)
TIMEOUT_NOT_FLOAT = Error("ERR timeout is not a float or out of range")
TIMEOUT_NEGATIVE = Error("ERR timeout is negative")
SSUBSCRIBE_DENY_BLOCKING = Error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
SUBSCRIBED_CONTEXT = (
    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
    "are allowed in this context"
)

# Server and client commands (commands/server.py, client.py, introspection.py)
NO_CONFIG_FILE = Error("ERR The server is running without a config file")
AOF_REWRITE_IN_PROGRESS = Error("ERR Background append only file rewriting already in progress")
NO_PERSISTENCE = Error("ERR the bundled store keeps no snapshots (no persistence)")
BUSYKEY = Error("BUSYKEY Target key name already exists.")
BAD_DUMP_PAYLOAD = Error("ERR DUMP payload version or checksum are wrong")
BAD_DUMP_DATA = Error("ERR Bad data format")
INVALID_FIRST_DB = Error("ERR invalid first DB index")
INVALID_SECOND_DB = Error("ERR invalid second DB index")
TIMEOUT_NOT_INTEGER = Error("ERR timeout is not an integer or out of range")
CLUSTER_DISABLED = Error("ERR This instance has cluster support disabled")
SLOWLOG_COUNT = Error("ERR count should be greater than or equal to -1")
NO_SUCH_CLIENT = Error("ERR No such client")
CLIENT_ID_INVALID = Error("ERR client-id should be greater than 0")
CLIENT_LIST_ID_INVALID = Error("ERR Invalid client ID")
CLIENT_NAME_INVALID = Error(
    "ERR Client names cannot contain spaces, newlines or special characters."
)
INVALID_COMMAND = Error("ERR Invalid command specified")
INVALID_COMMAND_ARGS = Error("ERR Invalid number of arguments specified for command")
NO_KEY_ARGUMENTS = Error("ERR The command has no key arguments")
INVALID_KEY_ARGS = Error("ERR Invalid arguments specified for command")
LFU_NOT_SELECTED = Error(
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to "
    "adjust."
)
LFU_SELECTED = Error(
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
DEBUG_NOT_ALLOWED = Error(
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)
MODULE_NOT_ALLOWED = Error(
    'ERR MODULE command not allowed. If the enable-module-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)
MODULE_LOAD_FAILED = Error("ERR Error loading the extension. Please check the server logs.")
MODULE_UNLOAD_NO_SUCH = Error("ERR Error unloading module: no such module with that name")
LATENCY_DOCTOR_DISABLED = (
    "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. "
    'You may use "CONFIG SET latency-monitor-threshold <milliseconds>." in order to enable it. '
    "If we weren't in a deep space mission I'd suggest to take a look at "
    "https://redis.io/topics/latency-monitor.\n"
)
MEMORY_DOCTOR_NO_ISSUE = (
    "Hi Sam, I can't find any memory issue in your instance. "
    "I can only account for what occurs on this base.\n"
)
MEMORY_DOCTOR_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    "be used in these conditions. Please, leave for your mission on Earth and fill it with "
    "some data. The new Sam and I will be back to our programming as soon as I finished "
    "rebooting.\n"
)


def subcommand_syntax(sub: bytes, command: str) -> Error:
    """ERR unknown subcommand or wrong number of arguments for 'x'. Try DEBUG HELP."""
    return Error(
        f"ERR unknown subcommand or wrong number of arguments for "
        f"'{_printable(sub[:128])}'. Try {command.upper()} HELP."
    )


def config_set_failed(name: str, reason: str) -> Error:
    """ERR CONFIG SET failed (possibly related to argument 'hz') - <reason>."""
    return Error(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


def wrong_arity(name: str) -> Error:
    """ERR wrong number of arguments for 'get' command."""
    return Error(f"ERR wrong number of arguments for '{name.lower()}' command")


def unknown_command(name: bytes, args: list[bytes]) -> Error:
    """Redis's exact text: the name and up to the first 128 bytes of arguments, each quoted."""
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += "'" + _printable(arg[: 128 - len(shown)]) + "' "
    return Error(
        f"ERR unknown command '{_printable(name[:128])}', with args beginning with: {shown}"
    )


def unknown_subcommand(sub: bytes, command: str) -> Error:
    """ERR unknown subcommand 'x'. Try CONFIG HELP."""
    return Error(f"ERR unknown subcommand '{_printable(sub[:128])}'. Try {command.upper()} HELP.")


def _printable(raw: bytes) -> str:
    # Redis maps CR and LF to spaces so an error reply stays one line
    return raw.decode("utf-8", "surrogateescape").replace("\r", " ").replace("\n", " ")
