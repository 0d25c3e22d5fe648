"""Dev tools: start and stop real server processes on free loopback ports.

Used by the test suite and the benchmarks, and usable from any script:

    from presence.testing import redis_server, bundled_store, redis_cluster

    with redis_server() as port: ...          # a throwaway redis-server
    with bundled_store() as port: ...         # `python -m presence.store`
    with redis_cluster() as cluster: ...      # 3 primaries + 3 replicas, cluster_state:ok

Every launcher picks its own free ports and a temporary directory, so runs never touch
the machine's Redis on 6379 and never interfere with each other. Nothing here imports
pytest: a missing executable raises `ToolMissing`, which the test suite turns into a skip
(or a failure under REQUIRE_ALL=1).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

# The source checkout (the directory holding pyproject.toml) when run from one.
ROOT = Path(__file__).resolve().parents[1]

CLUSTER_SLOTS = 16384


class ToolMissing(RuntimeError):
    """An executable a launcher needs is not on PATH."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} not installed (not on PATH)")
        self.tool = tool


def require_all() -> bool:
    """True when a missing tool must fail the run instead of skipping (CI sets REQUIRE_ALL=1)."""
    return os.environ.get("REQUIRE_ALL", "") not in ("", "0")


def find_tool(name: str) -> str:
    """The path of executable `name`; raise ToolMissing without it."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(name)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))  # all held open until the end: no port twice
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    """Block until something accepts on 127.0.0.1:port; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate `proc`, killing it if it does not exit within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child_pids(pid: int) -> list[int]:
    """The pids of `pid`'s children ([] once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def cmdline(pid: int) -> bytes:
    """`pid`'s command line, its arguments separated by NUL (b"" once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _redis_command(exe: str, port: int, workdir: str, extra: Sequence[str]) -> list[str]:
    return [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        workdir,
        *extra,
    ]


@contextmanager
def redis_server(*extra: str) -> Iterator[int]:
    """Run a throwaway redis-server on a free port; yield its port.

    `extra` are more redis-server arguments ("--notify-keyspace-events", "Ex", ...).
    """
    exe = find_tool("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="presence-redis-")  # where a SAVE would write dump.rdb
    proc = subprocess.Popen(
        _redis_command(exe, port, workdir, ("--loglevel", "warning", *extra)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def bundled_store(*extra: str) -> Iterator[int]:
    """Run the bundled store (`python -m presence.store`) on a free port; yield its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "presence.store", "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)


# ---------------------------------------------------------------- Redis Cluster


class ClusterNotReady(RuntimeError):
    """The cluster did not reach the awaited state in time."""


def _poll(check: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> object:
    """Call `check` until it returns something truthy; raise ClusterNotReady after `timeout`.

    Connection errors from nodes that are still starting or changing roles count as "not yet".
    """
    import redis

    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except (redis.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise ClusterNotReady(f"{what}: not after {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


class Cluster:
    """A running Redis Cluster of local redis-server processes (see `redis_cluster`).

    `ports` are the client ports of all nodes, in start order (killed ones included);
    `bus_ports[port]` is each node's cluster bus port; `url` points at the first node.
    Roles change with failovers: ask `primaries()` / `replicas()` for the current ones.
    """

    def __init__(self, workdir: str, node_timeout_ms: int) -> None:
        self.workdir = workdir
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.bus_ports: dict[int, int] = {}
        self.procs: dict[int, subprocess.Popen] = {}
        self.expected_primaries = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    @property
    def alive(self) -> list[int]:
        """Ports of the nodes whose process is running."""
        return [p for p in self.ports if self.procs[p].poll() is None]

    def client(self, port: int, **kwargs):
        """A plain redis.Redis connection to one node (close it when done)."""
        import redis

        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=port, **kwargs)

    def _ask(self, port: int, *command: str):
        with self.client(port, decode_responses=True) as conn:
            return conn.execute_command(*command)

    def nodes(self, port: int | None = None) -> list[dict]:
        """CLUSTER NODES as seen by `port` (default: the first live node), one dict per node:
        id, port, bus_port, flags (set), master (id or None), slots (list of "a-b"/"a")."""
        port = self.alive[0] if port is None else port
        with self.client(port) as conn:
            raw = conn.execute_command("CLUSTER", "NODES")
        if isinstance(raw, bytes):
            raw = raw.decode()
        if isinstance(raw, dict):  # redis-py may parse it into {addr: info}
            raise TypeError("unexpected parsed CLUSTER NODES reply")
        out = []
        for line in raw.splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            addr = fields[1].split(",")[0]  # ip:port@cport[,hostname]
            host_port, _, bus = addr.partition("@")
            out.append(
                {
                    "id": fields[0],
                    "port": int(host_port.rsplit(":", 1)[1]),
                    "bus_port": int(bus) if bus else None,
                    "flags": set(fields[2].split(",")),
                    "master": None if fields[3] == "-" else fields[3],
                    "link": fields[7],
                    "slots": [s for s in fields[8:] if not s.startswith("[")],
                }
            )
        return out

    def _myself(self, port: int) -> dict:
        return next(n for n in self.nodes(port) if "myself" in n["flags"])

    def role(self, port: int) -> str:
        """What the node at `port` says it is right now: "primary" or "replica"."""
        return "primary" if "master" in self._myself(port)["flags"] else "replica"

    def primaries(self) -> list[int]:
        """Ports of the live nodes that are primaries now (each node's own CLUSTER NODES)."""
        return [p for p in self.alive if self.role(p) == "primary"]

    def replicas(self) -> list[int]:
        """Ports of the live nodes that are replicas now."""
        return [p for p in self.alive if self.role(p) == "replica"]

    def primary_of(self, replica_port: int) -> int:
        """Port of the primary that the replica at `replica_port` replicates."""
        me = self._myself(replica_port)
        if me["master"] is None:
            raise ValueError(f"{replica_port} is not a replica")
        return next(n["port"] for n in self.nodes(replica_port) if n["id"] == me["master"])

    def replicas_of(self, primary_port: int) -> list[int]:
        """Ports of the nodes that replicate the primary at `primary_port` (its own view)."""
        me = self._myself(primary_port)
        return [n["port"] for n in self.nodes(primary_port) if n["master"] == me["id"]]

    def slot_owners(self, port: int) -> dict[int, int] | None:
        """{first slot of each range: primary port} as `port` sees it; None if a slot is
        uncovered or its owner is flagged failing."""
        covered, owners = 0, {}
        for node in self.nodes(port):
            if not node["slots"]:
                continue
            if node["flags"] & {"fail", "fail?", "noaddr", "handshake"}:
                return None
            for rng in node["slots"]:
                first, _, last = rng.partition("-")
                covered += int(last or first) - int(first) + 1
                owners[int(first)] = node["port"]
        return owners if covered == CLUSTER_SLOTS else None

    def _healthy(self) -> bool:
        alive = self.alive
        views = []
        for port in alive:
            info = self._ask(port, "CLUSTER", "INFO")
            if isinstance(info, str):
                info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            if str(info.get("cluster_state")) != "ok":
                return False
            if int(info.get("cluster_slots_ok", 0)) != CLUSTER_SLOTS:
                return False
            view = self.slot_owners(port)
            if view is None:
                return False
            views.append(view)
        if any(v != views[0] for v in views[1:]):
            return False  # the nodes do not agree yet on who owns what
        if len(set(views[0].values())) != self.expected_primaries:
            return False
        for port in alive:  # every live replica is attached to a live, agreed-on primary
            me = self._myself(port)
            if me["master"] is None:
                continue
            if self.primary_of(port) not in views[0].values():
                return False
            repl = self._ask(port, "INFO", "replication")
            if repl.get("master_link_status") != "up":
                return False
        return True

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Wait until every live node says cluster_state:ok with all 16384 slots served,
        all agree on each slot's primary, and every live replica's link to its primary is up."""
        _poll(self._healthy, timeout, "cluster healthy", interval=0.2)

    def kill(self, port: int) -> None:
        """SIGKILL the node at `port` (it stays dead until the cluster is stopped)."""
        proc = self.procs[port]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def wait_promoted(self, replica_port: int, timeout: float = 60.0) -> None:
        """Wait until `replica_port` is a primary and the cluster is healthy again (after
        `kill` of its primary: about 2-3 s with the default 1 s node timeout)."""
        deadline = time.monotonic() + timeout
        _poll(lambda: self.role(replica_port) == "primary", timeout, f"{replica_port} promoted")
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    def failover(self, replica_port: int, timeout: float = 60.0) -> None:
        """CLUSTER FAILOVER on the replica at `replica_port`; wait until it is a primary, its
        old primary a replica, and the cluster healthy. The request is repeated if a manual
        failover gives up (after 5 s, CLUSTER_MF_TIMEOUT) before it is done."""
        old = self.primary_of(replica_port)  # raises ValueError unless a replica
        deadline = time.monotonic() + timeout

        def promoted() -> bool:
            return self.role(replica_port) == "primary"

        while not promoted():
            self._ask(replica_port, "CLUSTER", "FAILOVER")
            try:
                _poll(promoted, min(15.0, max(0.1, deadline - time.monotonic())), "failover")
            except ClusterNotReady:
                if time.monotonic() >= deadline:
                    raise ClusterNotReady(
                        f"{replica_port} not promoted by CLUSTER FAILOVER after {timeout:.0f}s"
                    ) from None
        _poll(
            lambda: old not in self.alive or self.role(old) == "replica",
            max(1.0, deadline - time.monotonic()),
            f"old primary {old} demoted",
        )
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    def cluster_client(self, **kwargs):
        """A redis.cluster.RedisCluster client bootstrapped from every live node."""
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode("127.0.0.1", p) for p in self.alive]
        return RedisCluster(startup_nodes=nodes, **kwargs)

    def stop(self) -> None:
        """Stop every node (redis_cluster does it on exit)."""
        for proc in self.procs.values():
            stop(proc)


@contextmanager
def redis_cluster(
    primaries: int = 3,
    replicas: int = 1,
    extra: Sequence[str] = (),
    node_timeout_ms: int = 1000,
    timeout: float = 90.0,
) -> Iterator[Cluster]:
    """Run a Redis Cluster of `primaries * (1 + replicas)` local redis-server nodes.

    Each node listens on a free port and has its cluster bus on another free port
    (--cluster-port; the default port+10000 may be taken or past 65535). `extra` are more
    arguments for every node ("--notify-keyspace-events", "Ex"). The nodes are joined with
    `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`, and the cluster is
    yielded once healthy (see Cluster.wait_ok). Everything is stopped and the
    temporary directory (node configs, logs) removed on exit.
    """
    server = find_tool("redis-server")
    cli = find_tool("redis-cli")
    if primaries < 3:
        raise ValueError("redis-cli --cluster create needs at least 3 primaries")
    count = primaries * (1 + replicas)
    workdir = tempfile.mkdtemp(prefix="presence-cluster-")
    cluster = Cluster(workdir, node_timeout_ms)
    cluster.expected_primaries = primaries
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        cleanup.callback(cluster.stop)
        for _ in range(count):
            _start_node(cluster, server, extra)
        create = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in cluster.ports),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if create.returncode != 0:
            raise ClusterNotReady(
                f"redis-cli --cluster create failed ({create.returncode}):\n"
                f"{create.stdout[-2000:]}{create.stderr[-2000:]}"
            )
        try:
            cluster.wait_ok(timeout)
        except ClusterNotReady as exc:
            raise ClusterNotReady(f"{exc}\n{_log_tails(cluster)}") from None
        yield cluster


def _start_node(cluster: Cluster, exe: str, extra: Sequence[str], attempts: int = 5) -> None:
    """Start one cluster node on fresh free ports (retrying if another process took them)."""
    for attempt in range(attempts):
        port, bus = free_ports(2)
        log = os.path.join(cluster.workdir, f"redis-{port}.log")
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(bus),
            "--cluster-config-file",
            os.path.join(cluster.workdir, f"nodes-{port}.conf"),
            "--cluster-node-timeout",
            str(cluster.node_timeout_ms),
            "--logfile",
            log,
            *extra,
        ]
        proc = subprocess.Popen(
            _redis_command(exe, port, cluster.workdir, args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc, timeout=30)
        except RuntimeError:
            stop(proc)
            if attempt == attempts - 1:
                raise
            continue
        cluster.ports.append(port)
        cluster.bus_ports[port] = bus
        cluster.procs[port] = proc
        return


def _log_tails(cluster: Cluster, lines: int = 15) -> str:
    out = []
    for port in cluster.ports:
        path = Path(cluster.workdir) / f"redis-{port}.log"
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        out.append(f"--- node {port} ---\n" + "\n".join(tail))
    return "\n".join(out)
