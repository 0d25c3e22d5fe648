"""Write limits: `maxmemory` (OOM refusals, eviction) and `min-replicas-to-write`, as Redis 7.0.

Redis's processCommand refuses, before a command runs, a `denyoom` command when used memory
is over `maxmemory` (after trying to evict keys by `maxmemory-policy`), and a write command
when `min-replicas-to-write` asks for more good replicas than there are. The store never has
replicas, so with `min-replicas-to-write` > 0 (and `min-replicas-max-lag` > 0) every write is
refused `-NOREPLICAS`, as a Redis primary left by its replicas does. Scripts follow Redis's
rules (script.c): a script's shebang flags decide its own flags (`no-writes`, `allow-oom`);
a script without shebang is refused only at its first write (`redis.call`).

Used memory is an estimate kept while `maxmemory` > 0 (`accounting`): Redis 7.0.15's
`used_memory_startup` (STARTUP_BYTES) plus, per key, MEMORY USAGE's estimate of it
(`estimate_bytes`), re-estimated after every write command for the keys it names and
dropped when a key expires or is evicted. Setting `maxmemory` counts every key once (O(keys));
with `maxmemory` 0 (the default) nothing here runs.

While used memory is under `maxmemory`, data commands stay on the dispatch loop's fast
path (`Server.fast_commands`), wrapped (`_wrapped`): a write re-estimates its keys, and
evicts at once what it took over the limit (Redis evicts before the next command of any
client: the same to every observer); under an LRU or LFU policy every command records its
keys' access. When eviction cannot get under the limit (`noeviction`, no volatile key),
`over` is set and writes and `denyoom` commands take `Server.execute`, whose `admit` refuses
them; `min-replicas-to-write` sends every write there.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict

from presence.store import notify
from presence.store.commands import CommandError, find_keys
from presence.store.commands.introspection import estimate_bytes
from presence.store.resp import Error
from presence.store.scripting.engine import parse_shebang
from presence.store.scripting.sandbox import sha1hex

OOM = Error("OOM command not allowed when used memory > 'maxmemory'.")
NOREPLICAS = Error("NOREPLICAS Not enough good replicas to write.")
SCRIPT_OOM = Error(
    "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'"
)
STARTUP_BYTES = 876_024  # Redis 7.0.15's used_memory_startup (INFO memory, this machine class)
STRING_BYTES = 24 + 16 + 8  # a string key's entry, object and two sds headers (estimate_bytes)
RANDOM_REACH = 65_536  # a random victim is one of the first this many keys (see _random_key)
LRU_REACH = 1_000  # keys a volatile-lru/lfu victim search looks past before giving up
LFU_LOG_FACTOR = 10  # Redis's lfu-log-factor default
LFU_DECAY_MINUTES = 1  # Redis's lfu-decay-time default
LFU_INIT = 5  # Redis's LFU_INIT_VAL: a new key's counter
# LFULogIncr's odds of counting an access, by the counter's value
_LFU_ODDS = [1.0 / (max(0, counter - LFU_INIT) * LFU_LOG_FACTOR + 1) for counter in range(256)]
_random = random.random
_SCRIPTS = frozenset(["eval", "evalsha", "eval_ro", "evalsha_ro"])
_FUNCTIONS = frozenset(["fcall", "fcall_ro"])
# MULTI under OOM refuses every command but these (processCommand's reject_cmd_on_oom)
_MULTI_OOM_OK = frozenset(["exec", "discard", "quit", "reset"])
# reads that do not count as an access (Redis's LOOKUP_NOTOUCH)
_NO_TOUCH = frozenset(["object", "memory", "type", "ttl", "pttl", "expiretime", "pexpiretime"])
# write commands whose effect reaches beyond the keys they name: the dataset is counted again
_RECOUNT = frozenset(["flushall", "flushdb", "swapdb"])


def script_flags(server, cmd, argv: list[bytes]) -> tuple[bool, bool]:
    """(write, denyoom) for `argv`, as Redis's getCommandFlags: a script's declared flags
    replace EVAL's and FCALL's own (scriptFlagsToCmdFlags)."""
    flags = cmd.flags
    write, denyoom = "write" in flags, "denyoom" in flags
    declared = None
    if cmd.name in _SCRIPTS and len(argv) > 1:
        scripts = server.scripts
        if cmd.name.startswith("evalsha"):
            script = scripts.scripts.get(argv[1].lower()) if len(argv[1]) == 40 else None
            declared = script.flags if script is not None else None
        else:
            script = scripts.scripts.get(sha1hex(argv[1]))
            if script is not None:
                declared = script.flags
            else:
                try:
                    declared = parse_shebang(argv[1])[0]
                except CommandError:
                    declared = None
    elif cmd.name in _FUNCTIONS and len(argv) > 1:
        function = server.scripts.functions.get(argv[1])
        declared = function.flags if function is not None else None
    if declared is None:  # no shebang: EVAL's flags (neither write nor denyoom)
        return write, denyoom
    no_writes = "no-writes" in declared
    return not no_writes, not no_writes and "allow-oom" not in declared


class Limits:
    """A server's write limits; `on` when any is set (then `Server.execute` asks `admit`)."""

    def __init__(self, server) -> None:
        self.server = server
        self.on = False  # a limit is set: commands it concerns take the full path
        self.maxmemory = 0
        self.policy = "noeviction"
        self.samples = 5
        self.no_replicas = False  # min-replicas-to-write > 0 and min-replicas-max-lag > 0
        self.pre_command_oom = False  # Redis's pre_command_oom_state: OOM when the command began
        self.accounting = False  # maxmemory > 0: `used` is kept
        self.tracking = False  # an LRU/LFU policy: keys' access is recorded (`recency`)
        self.lfu = False
        self.used = STARTUP_BYTES
        self.sizes: list[dict[bytes, int]] = []  # per db: key -> estimated bytes
        self.recency: list[OrderedDict] = []  # per db: key -> ms (LRU) or LFU word, oldest first
        self.evicted_keys = 0
        self.over = False  # used > maxmemory after a failed eviction: denyoom takes `admit`
        self._wrappers: dict = {}  # a command's handler -> its fast-path wrapper
        self._next_db = itertools.cycle(range(len(server.keyspace.dbs)))

    # ------------------------------------------------------------ configuration

    def configure(self, config) -> None:
        """Take the current maxmemory*, min-replicas-* values (CONFIG SET, startup)."""
        was_accounting, was_tracking, was_lfu = self.accounting, self.tracking, self.lfu
        self.maxmemory = config["maxmemory"]
        self.policy = config["maxmemory-policy"]
        self.samples = config["maxmemory-samples"]
        self.no_replicas = bool(config["min-replicas-to-write"] and config["min-replicas-max-lag"])
        self.accounting = self.maxmemory > 0
        self.lfu = self.accounting and self.policy.endswith("-lfu")
        self.tracking = self.accounting and (self.lfu or self.policy.endswith("-lru"))
        self.on = self.accounting or self.no_replicas
        self.over = False
        self._wrappers = {}
        if self.tracking and (not was_tracking or self.lfu != was_lfu):
            self._seed_recency()
        elif not self.tracking:
            self.recency = []
        if self.accounting and not was_accounting:
            self.recount()
        elif not self.accounting:
            self.sizes = []
            self.used = STARTUP_BYTES
        keyspace = self.server.keyspace
        keyspace.on_gone = self.forget if self.accounting else None
        if self.accounting:
            self.over = not self.evict()  # Redis's updateMaxmemory evicts at once

    def fast_commands(self, table: dict) -> dict:
        """The dispatch loop's fast table under these limits: without the commands that
        must pass `admit`, the others wrapped to account for their keys (`_wrapped`)."""
        if not self.on:
            return table
        out = {}
        commands = self.server.commands
        for sent, entry in table.items():
            cmd = commands[entry[0].encode()]
            write = "write" in cmd.flags
            if write and self.no_replicas:
                continue
            if self.over and (write or "denyoom" in cmd.flags):
                continue
            if self.accounting and (write or (self.tracking and cmd.name not in _NO_TOUCH)):
                entry = (entry[0], self._wrapped(cmd, entry[1]), *entry[2:])
            out[sent] = entry
        return out

    def _wrapped(self, cmd, handler):
        """`handler` accounting for the keys it names (fast path, under the limit)."""
        wrapper = self._wrappers.get(handler)
        if wrapper is not None:
            return wrapper
        after = self.after
        denyoom = "denyoom" in cmd.flags
        counters = self.server.command_stats[cmd.name]
        first = cmd.first_key
        if (
            first > 0
            and first == cmd.last_key
            and "movablekeys" not in cmd.flags
            and cmd.name not in _RECOUNT
            and cmd.name not in ("move", "copy")
        ):
            # the common case, a command of one key (SET, INCR, HSET, GET...), inlined
            wrapper = self._one_key(cmd, handler, first, denyoom, counters)
            self._wrappers[handler] = wrapper
            return wrapper

        def wrapper(client, argv):
            if self.over and denyoom:  # went over earlier in this pipeline's batch
                counters.calls -= 1  # run_command counts it back: rejected, not called
                counters.failed -= 1
                counters.rejected += 1
                return OOM
            reply = handler(client, argv)
            after(client, cmd, argv)
            if self.used > self.maxmemory:
                self.settle()
            return reply

        self._wrappers[handler] = wrapper
        return wrapper

    def _one_key(self, cmd, handler, first: int, denyoom: bool, counters):
        """`_wrapped` for a command of one key (argv[first])."""
        write = "write" in cmd.flags
        touch = self.tracking and cmd.name not in _NO_TOUCH
        lru = touch and not self.lfu
        samples = self.samples
        keyspace = self.server.keyspace

        def wrapper(client, argv):
            if write and self.over and denyoom:  # over earlier in this pipeline's batch
                counters.calls -= 1  # run_command counts it back: rejected, not called
                counters.failed -= 1
                counters.rejected += 1
                return OOM
            reply = handler(client, argv)
            db = client.db
            key = argv[first]
            value = db.data.get(key)
            if write:
                sizes = self.sizes[db.index]
                old = sizes.get(key, 0)
                if value is None:
                    if old:
                        del sizes[key]
                        self.used -= old
                else:
                    new = (
                        STRING_BYTES + len(key) + len(value)
                        if type(value) is bytes
                        else estimate_bytes(key, value, samples)
                    )
                    sizes[key] = new
                    self.used += new - old
            if touch:
                recency = self.recency[db.index]
                if value is None:
                    recency.pop(key, None)
                elif lru:
                    recency[key] = keyspace.now
                    recency.move_to_end(key)
                else:
                    self._touch(recency, key)
            if write and self.used > self.maxmemory:
                self.settle()
            return reply

        return wrapper

    def _set_over(self, over: bool) -> None:
        """Used memory stays over maxmemory (or is back under): the fast table changes."""
        if over != self.over:
            self.over = over
            self.server.refresh_fast_commands()

    # ------------------------------------------------------------ processCommand

    def admit(self, client, cmd, argv: list[bytes]) -> Error | None:
        """Redis's processCommand checks: evict, then OOM, then NOREPLICAS; None to go on.
        The AOF's commands are obeyed (Redis's mustObeyClient): loading never evicts."""
        if self.server.persistence.loading:
            return None
        if client.multi is not None and cmd.name == "exec":
            write = denyoom = False
            for queued, queued_argv in client.multi:
                w, d = script_flags(self.server, queued, queued_argv)
                write, denyoom = write or w, denyoom or d
        else:
            write, denyoom = script_flags(self.server, cmd, argv)
        if self.accounting:
            oom = not self.evict()
            if oom != self.over:
                self._set_over(oom)
            reject = denyoom or (client.multi is not None and cmd.name not in _MULTI_OOM_OK)
            if oom and reject:
                return OOM
            self.pre_command_oom = oom
        if write and self.no_replicas:
            return NOREPLICAS
        return None

    def script_refusal(self, flags: frozenset) -> Error | None:
        """scriptPrepareForRun's checks for a script with declared flags (not read-only)."""
        no_writes = "no-writes" in flags
        if not no_writes and self.no_replicas:
            return NOREPLICAS
        if self.pre_command_oom and self.accounting and not no_writes and "allow-oom" not in flags:
            return SCRIPT_OOM
        return None

    def script_call_refusal(self, cmd, dirty: bool, allow_oom: bool) -> str | None:
        """scriptCall's checks (scriptVerifyWriteCommandAllow, scriptVerifyOOM) for a command
        a script calls; its error text or None."""
        if dirty:
            return None
        if self.no_replicas and "write" in cmd.flags:
            return NOREPLICAS
        if not allow_oom and self.accounting and self.pre_command_oom and "denyoom" in cmd.flags:
            return OOM
        return None

    # ------------------------------------------------------------ accounting

    def run(self, client, cmd, argv: list[bytes], entry):
        """Run a command (`Server.run_command`) and account for the keys it names."""
        reply = self.server.run_command(client, entry, argv)
        self.after(client, cmd, argv)
        return reply

    def after(self, client, cmd, argv: list[bytes]) -> None:
        """Re-estimate the keys `argv` wrote; record their access under LRU/LFU."""
        write = "write" in cmd.flags
        if not write and (not self.tracking or cmd.name in _NO_TOUCH):
            return
        if cmd.name in _RECOUNT:
            self.recount()
            return
        db = client.db
        index = db.index
        keys = _keys(cmd, argv)
        if write and self.accounting:
            sizes = self.sizes[index]
            data = db.data
            for key in keys:
                self._resize(sizes, data, key)
            if cmd.name in ("move", "copy"):
                self._other_db(cmd.name, argv)
        if self.tracking:
            recency = self.recency[index]
            data = db.data
            for key in keys:
                if key in data:
                    self._touch(recency, key)
                else:
                    recency.pop(key, None)

    def _resize(self, sizes: dict, data: dict, key: bytes) -> None:
        value = data.get(key)
        old = sizes.get(key, 0)
        if value is None:
            if old:
                del sizes[key]
                self.used -= old
            return
        new = _estimate(key, value, self.samples)
        sizes[key] = new
        self.used += new - old

    def _other_db(self, name: str, argv: list[bytes]) -> None:
        """MOVE's and COPY ... DB's target database: its key is counted there too."""
        target = None
        if name == "move" and len(argv) == 3:
            target = argv[2]
        elif name == "copy":
            words = [a.lower() for a in argv[3:]]
            if b"db" in words and words.index(b"db") + 1 < len(words):
                target = argv[3 + words.index(b"db") + 1]
        try:
            index = int(target) if target is not None else -1
        except ValueError:
            return
        if 0 <= index < len(self.sizes):
            key = argv[1] if name == "move" else argv[2]
            db = self.server.keyspace.dbs[index]
            self._resize(self.sizes[index], db.data, key)
            if self.tracking and key in db.data:
                self._touch(self.recency[index], key)

    def recount(self) -> None:
        """Estimate every key again (O(keys)): maxmemory set, FLUSH*, SWAPDB."""
        samples = self.samples
        self.sizes = [
            {key: _estimate(key, value, samples) for key, value in db.data.items()}
            for db in self.server.keyspace.dbs
        ]
        self.used = STARTUP_BYTES + sum(sum(s.values()) for s in self.sizes)
        if self.tracking:
            for recency, db in zip(self.recency, self.server.keyspace.dbs, strict=True):
                for key in [k for k in recency if k not in db.data]:
                    del recency[key]
                for key in db.data:
                    if key not in recency:
                        self._touch(recency, key)

    def forget(self, db, key: bytes) -> None:
        """A key is going (expired): its bytes leave the estimate (Keyspace.on_gone)."""
        if self.sizes:
            old = self.sizes[db.index].pop(key, 0)
            self.used -= old
        if self.recency:
            self.recency[db.index].pop(key, None)

    def used_memory(self) -> int:
        return self.used

    # ------------------------------------------------------------ LRU / LFU

    def _seed_recency(self) -> None:
        now = self.server.keyspace.now
        word = (_minutes(now) << 8) | LFU_INIT if self.lfu else now
        self.recency = [OrderedDict.fromkeys(db.data, word) for db in self.server.keyspace.dbs]

    def _touch(self, recency: OrderedDict, key: bytes) -> None:
        """Record an access: to the end of the LRU order; LFU: counter decayed, then bumped."""
        now = self.server.keyspace.now
        if not self.lfu:
            recency[key] = now
            recency.move_to_end(key)
            return
        word = recency.get(key)
        minutes = (now // 60_000) & 0xFFFF
        if word is None:  # a new key starts at LFU_INIT_VAL, not counted as an access
            recency[key] = (minutes << 8) | LFU_INIT
            return
        counter = word & 0xFF if word >> 8 == minutes else _decayed(word, minutes)
        if counter < 255 and _random() < _LFU_ODDS[counter]:  # Redis's LFULogIncr
            counter += 1
        recency[key] = (minutes << 8) | counter
        recency.move_to_end(key)

    def object_freq(self, db, key: bytes) -> int:
        """OBJECT FREQ's counter (decayed), or 0 when not tracked."""
        if not self.lfu or not self.recency:
            return 0
        word = self.recency[db.index].get(key)
        return 0 if word is None else _decayed(word, _minutes(self.server.keyspace.now))

    def object_idletime(self, db, key: bytes) -> int:
        """OBJECT IDLETIME's seconds, or 0 when not tracked."""
        if self.lfu or not self.recency:
            return 0
        last = self.recency[db.index].get(key)
        return 0 if last is None else max(0, (self.server.keyspace.now - last) // 1000)

    # ------------------------------------------------------------ eviction

    def settle(self) -> None:
        """After a command (not inside a script or EXEC): evict what it took over the limit,
        as Redis does before the next command of any client (reads skip `admit` here)."""
        server = self.server
        if (
            self.accounting
            and self.used > self.maxmemory
            and server.scripts.running is None
            and not server.persistence.loading
        ):
            self._set_over(not self.evict())
        elif self.over and self.used <= self.maxmemory:
            self._set_over(False)

    def evict(self) -> bool:
        """Redis's performEvictions: evict keys by the policy until used memory is at most
        maxmemory; False (EVICT_FAIL) when it cannot get there."""
        if not self.accounting or self.used <= self.maxmemory:
            return True
        if self.policy == "noeviction":
            return False
        while self.used > self.maxmemory:
            victim = self._victim()
            if victim is None:
                return False
            self._evict(*victim)
        return True

    def _victim(self):
        """(db, key) the policy evicts next, or None when nothing can go."""
        dbs = self.server.keyspace.dbs
        policy = self.policy
        if policy.endswith("-random"):
            volatile = policy.startswith("volatile")
            for _ in range(len(dbs)):  # Redis: round robin over the databases
                db = dbs[next(self._next_db)]
                keys = db.expires if volatile else db.data
                if keys:
                    return db, _random_key(keys)
            return None
        if policy == "volatile-ttl":
            best = None
            for db in dbs:
                for key in _sample(db.expires, self.samples):
                    deadline = db.expires[key]
                    if best is None or deadline < best[0]:
                        best = (deadline, db, key)
            return None if best is None else best[1:]
        volatile = policy.startswith("volatile")
        return self._least_used(dbs, volatile)

    def _least_used(self, dbs, volatile: bool):
        """LRU: the least recently used key; LFU: of a few least recently used ones, the
        least frequently used (volatile-: keys with a deadline only)."""
        now_minutes = _minutes(self.server.keyspace.now)
        best = None
        for db, recency in zip(dbs, self.recency, strict=True):
            if not recency:
                continue
            candidates = []
            looked = 0
            for key, word in recency.items():
                looked += 1
                if key not in db.data:
                    continue
                if volatile and key not in db.expires:
                    if looked >= LRU_REACH:
                        break
                    continue
                candidates.append((key, word))
                if not self.lfu or len(candidates) >= self.samples:
                    break
            for key, word in candidates:
                rank = _decayed(word, now_minutes) if self.lfu else word
                if best is None or rank < best[0]:
                    best = (rank, db, key)
        if best is None:
            self._drop_stale()
            return None
        return best[1:]

    def _drop_stale(self) -> None:
        for db, recency in zip(self.server.keyspace.dbs, self.recency, strict=True):
            for key in [k for k in recency if k not in db.data]:
                del recency[key]

    def _evict(self, db, key: bytes) -> None:
        """Delete `key` as Redis's eviction does: AOF DEL, `evicted` event, evicted_keys."""
        server = self.server
        index = db.index
        if self.sizes:
            self.used -= self.sizes[index].pop(key, 0)
        if self.recency:
            self.recency[index].pop(key, None)
        if key not in db.data:
            return
        if db.blocked and key in db.blocked:
            db._stream_gone(key)
        del db.data[key]
        db.expires.pop(key, None)
        db.touch(key)
        self.evicted_keys += 1
        server.persistence.record_expiry(index, key)  # a DEL in the append-only file
        db.notify(notify.EVICTED, b"evicted", key)


def _estimate(key: bytes, value, samples: int) -> int:
    """MEMORY USAGE's estimate of a key, a string's short-cut (no integer encoding)."""
    if type(value) is bytes:
        return STRING_BYTES + len(key) + len(value)
    return estimate_bytes(key, value, samples)


def _keys(cmd, argv: list[bytes]) -> list[bytes]:
    """The keys `argv` names: its legacy key range unless the keys move, else `find_keys`."""
    first = cmd.first_key
    if first > 0 and "movablekeys" not in cmd.flags:  # SET's getkeys is for its flags only
        last = cmd.last_key
        end = len(argv) + last + 1 if last < 0 else last + 1
        return argv[first : end : cmd.step]
    return [argv[i] for i, _flags in find_keys(cmd, argv)]


def _minutes(now_ms: int) -> int:
    return (now_ms // 60_000) & 0xFFFF


def _decayed(word: int, now_minutes: int) -> int:
    """Redis's LFUDecrAndReturn: the counter less one per lfu-decay-time minutes idle."""
    counter = word & 0xFF
    elapsed = (now_minutes - (word >> 8)) & 0xFFFF
    periods = elapsed // LFU_DECAY_MINUTES
    return max(0, counter - periods)


def _random_key(keys: dict) -> bytes:
    """A random key of `keys`: uniform over the first RANDOM_REACH keys in the dict's order
    (a Python dict has no O(1) random pick)."""
    offset = random.randrange(min(len(keys), RANDOM_REACH))
    return next(itertools.islice(iter(keys), offset, None))


def _sample(keys: dict, count: int) -> list[bytes]:
    """`count` keys from a random place of `keys` (maxmemory-samples)."""
    if not keys:
        return []
    offset = random.randrange(max(1, min(len(keys), RANDOM_REACH) - count + 1))
    return list(itertools.islice(iter(keys), offset, offset + count))
