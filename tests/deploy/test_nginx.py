"""deploy/nginx.conf in front of two `presence serve` nodes sharing one bundled store.

No sticky sessions: requests alternate between the nodes, and a user who goes silent is
announced `offline` exactly once to a poll held through nginx, whichever node holds it.
"""

import json
import re
import subprocess
import sys
import urllib.request
from urllib.parse import urlencode

import pytest

from presence.testing import ROOT, bundled_store, free_port, stop, wait_for_port
from tests.helpers import need_tool, wait_until

CHANNEL = "nginx-test"


def render_config(tmp_path, listen_port: int, node_ports: list[int]) -> str:
    """deploy/nginx.conf with the test's ports, wrapped in a minimal main config."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(
        f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in node_ports
    )
    site, count = re.subn(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, site)
    assert count == 1, "the upstream block of deploy/nginx.conf changed shape"
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    (tmp_path / "presence.conf").write_text(site)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = f"""
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {tmp_path}/presence.conf;
}}
"""
    (tmp_path / "nginx.conf").write_text(main)
    return str(tmp_path / "nginx.conf")


def get(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urlencode(params)}"
    with urllib.request.urlopen(url, timeout=15) as response:
        return json.loads(response.read())


@pytest.fixture
def cluster(tmp_path):
    """nginx on a free port -> two nodes (timeout 2 s) -> one bundled store."""
    nginx = need_tool("nginx")
    with bundled_store("--keys-expire-notify", "presence:expired") as store_port:
        nodes, ports = [], []
        try:
            for name in ("n1", "n2"):
                port = free_port()
                nodes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "presence.cli",
                            "serve",
                            "--port",
                            str(port),
                            "--redis-url",
                            f"redis://127.0.0.1:{store_port}/0",
                            "--node-id",
                            name,
                            "--timeout",
                            "2",
                            "--poll-timeout",
                            "1",
                        ],
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                ports.append(port)
            for proc, port in zip(nodes, ports, strict=False):
                wait_for_port(port, proc)
            listen = free_port()
            conf = render_config(tmp_path, listen, ports)
            check = subprocess.run([nginx, "-t", "-c", conf], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
            proxy = subprocess.Popen(
                [nginx, "-c", conf, "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            nodes.append(proxy)
            wait_for_port(listen, proxy)
            yield listen
        finally:
            for proc in nodes:
                stop(proc)


def test_requests_alternate_between_nodes(cluster):
    seen = {get(cluster, "/healthz")["node"] for _ in range(6)}
    assert seen == {"n1", "n2"}


def test_jsonp_passes_through_the_proxy(cluster):
    url = f"http://127.0.0.1:{cluster}/channels/{CHANNEL}/join?user=carol&conn=c1&callback=cb"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
        assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert body.startswith("/**/ typeof cb === 'function' && cb(") and body.endswith(");")


def test_silent_user_goes_offline_once_through_nginx(cluster):
    get(cluster, f"/channels/{CHANNEL}/join", user="alice", conn="a1")
    cursor = get(cluster, f"/channels/{CHANNEL}/join", user="bob", conn="b1")["cursor"]
    events = []

    def offline_seen() -> bool:  # one held poll (1 s) per call
        nonlocal cursor
        answer = get(cluster, f"/channels/{CHANNEL}/poll", user="bob", conn="b1", cursor=cursor)
        cursor = answer["cursor"]
        events.extend(answer.get("events", []))
        return any(e["type"] == "offline" for e in events)

    wait_until(offline_seen, timeout=20, interval=0, message=lambda: f"no offline in {events}")
    for _ in range(2):  # two more held polls (1 s each): a duplicate from the other node would show
        answer = get(cluster, f"/channels/{CHANNEL}/poll", user="bob", conn="b1", cursor=cursor)
        assert "rejoin" not in answer, answer
        cursor = answer["cursor"]
        events += answer["events"]
    offline = [e for e in events if e["type"] == "offline"]
    assert [e["user"] for e in offline] == ["alice"]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
