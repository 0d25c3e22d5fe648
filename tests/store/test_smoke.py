"""First differential checks: the store answers like redis-server for basic commands."""


def test_basic_string_commands_match_redis(pair):
    pair.same("SET", "k", "v")
    pair.same("GET", "k")
    pair.same("GET", "missing")
    pair.same("INCR", "k")
    pair.same("NOSUCHCOMMAND", "a", "b")
    pair.same("GET")
    pair.same("SET", "n", "1", "EX", "100")
    pair.same("TTL", "n")
    pair.same("TTL", "missing")
    pair.same("TYPE", "n")
    pair.same("DEL", "n", "k", "zz")


def test_unknown_command_quotes_raw_bytes(pair):
    pair.same(b"\xff\xfe", b"\xe9")
