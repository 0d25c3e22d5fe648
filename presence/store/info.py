"""The text of INFO: Redis's sections and field names, filled from the running store.

Fields a Redis tool may read (redis-cli, redis-benchmark, exporters) are present with
the store's real values where it has them and Redis's idle values otherwise (no
persistence, no replication, one thread). `render(server, names)` follows Redis's
section selection: none or "default", "all", "everything", or section names.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
import weakref
from dataclasses import dataclass, field

from presence.store import REDIS_VERSION

DEFAULT = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
]
ALL = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
]
EVERYTHING = ALL  # "all" leaves out module-generated sections; the store has no modules
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class _Sampler:
    """Per-server figures INFO derives over time: the ops rate and the memory peak."""

    samples: list = field(default_factory=list)  # (monotonic seconds, commands processed)
    peak_rss: int = 0
    run_id: str = field(default_factory=lambda: os.urandom(20).hex())
    replid: str = field(default_factory=lambda: os.urandom(20).hex())


_samplers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sampler(server) -> _Sampler:
    sampler = _samplers.get(server)
    if sampler is None:
        sampler = _samplers[server] = _Sampler()
    return sampler


def reset(server) -> None:
    """Forget rate samples and the memory peak (CONFIG RESETSTAT)."""
    sampler = _sampler(server)
    sampler.samples.clear()
    sampler.peak_rss = 0


def render(server, names: list[str]) -> str:
    """The INFO reply text for the requested section names (case-insensitive)."""
    wanted = _select([n.lower() for n in names])
    parts = [_SECTIONS[name](server) for name in _order(wanted)]
    return "\r\n".join(parts)


def _select(names: list[str]) -> set[str]:
    if not names:
        return set(DEFAULT)
    wanted: set[str] = set()
    for name in names:
        if name == "default":
            wanted.update(DEFAULT)
        elif name == "all":
            wanted.update(ALL)
        elif name == "everything":
            wanted.update(EVERYTHING)
        elif name in _SECTIONS:
            wanted.add(name)
    return wanted


def _order(wanted: set[str]) -> list[str]:
    return [name for name in EVERYTHING if name in wanted]


def _section(title: str, fields: list[tuple[str, object]]) -> str:
    return "".join([f"# {title}\r\n", *(f"{k}:{v}\r\n" for k, v in fields)])


def rss_bytes() -> int:
    """Resident set size of this process, read from /proc (0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def human(n: int) -> str:
    """Redis's bytesToHuman: 1023B, 1.00K, 2.50M, 1.00G."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


def _server(server) -> str:
    now = time.time()
    uptime = int(now - server.started)
    ports = server.ports() if server.servers else []
    return _section(
        "Server",
        [
            ("redis_version", REDIS_VERSION),
            ("redis_git_sha1", "00000000"),
            ("redis_git_dirty", 0),
            ("redis_build_id", "0"),
            ("redis_mode", "standalone"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
            ("monotonic_clock", "POSIX clock_gettime"),
            ("multiplexing_api", "asyncio"),
            ("atomicvar_api", "none"),
            ("gcc_version", "0.0.0"),
            ("process_id", os.getpid()),
            ("process_supervised", "no"),
            ("run_id", _sampler(server).run_id),
            ("tcp_port", ports[0] if ports else server.config["port"]),
            ("server_time_usec", time.time_ns() // 1000),
            ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400),
            ("hz", server.config["hz"]),
            ("configured_hz", server.config["hz"]),
            ("lru_clock", int(now) & 0xFFFFFF),
            ("executable", sys.executable),
            ("config_file", ""),
            ("io_threads_active", 0),
        ],
    )


def _clients(server) -> str:
    pending = [
        c.transport.get_write_buffer_size()
        for c in server.clients.values()
        if c.transport is not None and not c.transport.is_closing()
    ]
    return _section(
        "Clients",
        [
            ("connected_clients", len(server.clients)),
            ("cluster_connections", 0),
            ("maxclients", server.config["maxclients"]),
            ("client_recent_max_input_buffer", 0),
            ("client_recent_max_output_buffer", max(pending, default=0)),
            ("blocked_clients", sum(1 for c in server.clients.values() if c.blocked is not None)),
            ("tracking_clients", 0),
            ("clients_in_timeout_table", 0),
        ],
    )


def _memory(server) -> str:
    rss = rss_bytes()
    sampler = _sampler(server)
    sampler.peak_rss = max(sampler.peak_rss, rss)
    peak = sampler.peak_rss
    maxmemory = server.config["maxmemory"]
    # with maxmemory set, what eviction compares with it (limits.py); else the RSS
    used = server.limits.used if server.limits.accounting else rss
    return _section(
        "Memory",
        [
            ("used_memory", used),
            ("used_memory_human", human(used)),
            ("used_memory_rss", rss),
            ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak),
            ("used_memory_peak_human", human(peak)),
            ("used_memory_peak_perc", f"{100.0 * rss / peak:.2f}%"),
            ("used_memory_overhead", 0),
            ("used_memory_startup", 0),
            ("used_memory_dataset", rss),
            ("total_system_memory", _system_memory()),
            ("total_system_memory_human", human(_system_memory())),
            ("used_memory_lua", 0),
            ("used_memory_scripts", 0),
            ("number_of_cached_scripts", len(server.scripts.scripts)),
            ("maxmemory", maxmemory),
            ("maxmemory_human", human(maxmemory)),
            ("maxmemory_policy", server.config["maxmemory-policy"]),
            ("mem_fragmentation_ratio", "1.00"),
            ("mem_fragmentation_bytes", 0),
            ("mem_not_counted_for_evict", 0),
            ("mem_replication_backlog", 0),
            ("mem_clients_slaves", 0),
            ("mem_clients_normal", 0),
            ("mem_aof_buffer", 0),
            ("mem_allocator", "pymalloc"),
            ("active_defrag_running", 0),
            ("lazyfree_pending_objects", 0),
            ("lazyfreed_objects", 0),
        ],
    )


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        return 0


def _persistence(server) -> str:
    return _section(
        "Persistence",
        [
            ("loading", 0),
            ("async_loading", 0),
            ("current_cow_peak", 0),
            ("current_cow_size", 0),
            ("current_cow_size_age", 0),
            ("current_fork_perc", "0.00"),
            ("current_save_keys_processed", 0),
            ("current_save_keys_total", 0),
            ("rdb_changes_since_last_save", 0),
            ("rdb_bgsave_in_progress", 0),
            ("rdb_last_save_time", int(server.started)),
            ("rdb_last_bgsave_status", "ok"),
            ("rdb_last_bgsave_time_sec", -1),
            ("rdb_current_bgsave_time_sec", -1),
            ("rdb_saves", 0),
            ("rdb_last_cow_size", 0),
            ("rdb_last_load_keys_expired", 0),
            ("rdb_last_load_keys_loaded", 0),
            *server.persistence.info_fields(),
        ],
    )


def ops_per_sec(server) -> int:
    """Commands per second since the last INFO taken at least 100 ms ago (0 on the first)."""
    samples = _sampler(server).samples
    now, total = time.monotonic(), server.commands_processed()
    rate = 0
    for then, count in reversed(samples):
        if now - then >= 0.1:
            rate = round((total - count) / (now - then))
            break
    if not samples or now - samples[-1][0] >= 0.1:
        samples.append((now, total))
        del samples[:-16]
    return rate


def _stats(server) -> str:
    stats = server.stats
    return _section(
        "Stats",
        [
            ("total_connections_received", stats["total_connections_received"]),
            ("total_commands_processed", server.commands_processed()),
            ("instantaneous_ops_per_sec", ops_per_sec(server)),
            ("total_net_input_bytes", server.net_input_bytes),
            ("total_net_output_bytes", server.net_output_bytes),
            ("instantaneous_input_kbps", "0.00"),
            ("instantaneous_output_kbps", "0.00"),
            ("rejected_connections", stats["rejected_connections"]),
            ("sync_full", 0),
            ("sync_partial_ok", 0),
            ("sync_partial_err", 0),
            ("expired_keys", server.keyspace.expired_count),
            ("expired_stale_perc", "0.00"),
            ("expired_time_cap_reached_count", 0),
            ("expire_cycle_cpu_milliseconds", 0),
            ("evicted_keys", server.limits.evicted_keys),
            ("evicted_clients", 0),
            ("keyspace_hits", server.keyspace.hits),
            ("keyspace_misses", server.keyspace.misses),
            ("pubsub_channels", len(server.hub.channels)),
            ("pubsub_patterns", len(server.hub.patterns)),
            ("pubsubshard_channels", len(server.hub.shard_channels)),
            ("latest_fork_usec", 0),
            ("total_forks", 0),
            ("migrate_cached_sockets", 0),
            ("tracking_total_keys", 0),
            ("tracking_total_items", 0),
            ("tracking_total_prefixes", 0),
            ("unexpected_error_replies", 0),
            ("total_error_replies", stats["total_error_replies"]),
            (
                "client_output_buffer_limit_disconnections",
                stats["client_output_buffer_limit_disconnections"],
            ),
            ("dump_payload_sanitizations", 0),
            ("total_reads_processed", 0),
            ("total_writes_processed", 0),
        ],
    )


def _replication(server) -> str:
    return _section(
        "Replication",
        [
            ("role", "master"),
            ("connected_slaves", 0),
            *([("min_slaves_good_slaves", 0)] if server.limits.no_replicas else []),
            ("master_failover_state", "no-failover"),
            ("master_replid", _sampler(server).replid),
            ("master_replid2", "0" * 40),
            ("master_repl_offset", 0),
            ("second_repl_offset", -1),
            ("repl_backlog_active", 0),
            ("repl_backlog_size", 1048576),
            ("repl_backlog_first_byte_offset", 0),
            ("repl_backlog_histlen", 0),
        ],
    )


def _cpu(server) -> str:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _section(
        "CPU",
        [
            ("used_cpu_sys", f"{me.ru_stime:.6f}"),
            ("used_cpu_user", f"{me.ru_utime:.6f}"),
            ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
            ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
            ("used_cpu_sys_main_thread", f"{me.ru_stime:.6f}"),
            ("used_cpu_user_main_thread", f"{me.ru_utime:.6f}"),
        ],
    )


def _keyspace(server) -> str:
    return _section(
        "Keyspace",
        [
            (f"db{db.index}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl=0")
            for db in server.keyspace.dbs
            if db.data
        ],
    )


def _commandstats(server) -> str:
    return _section(
        "Commandstats",
        [
            (
                f"cmdstat_{name}",
                f"calls={calls},usec={ns // 1000},"
                f"usec_per_call={ns // 1000 / calls if calls else 0:.2f},"
                f"rejected_calls={rejected},failed_calls={failed}",
            )
            for name, (calls, ns, rejected, failed) in sorted(server.command_stats.items())
            if calls or rejected
        ],
    )


def _errorstats(server) -> str:
    return _section(
        "Errorstats",
        [
            (f"errorstat_{code}", f"count={count}")
            for code, count in sorted(server.error_stats.items())
        ],
    )


def _empty(title: str):
    return lambda server: _section(title, [])


_SECTIONS = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "persistence": _persistence,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "modules": _empty("Modules"),
    "commandstats": _commandstats,
    "errorstats": _errorstats,
    "latencystats": _empty("Latencystats"),
    "cluster": lambda server: _section("Cluster", [("cluster_enabled", 0)]),
    "keyspace": _keyspace,
}
