"""No client token or admin token ever reaches a log line or a traceback, against a live
node: valid and refused requests, the size refusals written below the application
(413, 414, 431), malformed requests, and an uncaught exception."""

import logging
import traceback

import pytest
from tornado.httpclient import AsyncHTTPClient

from presence.web import auth
from presence.web.base import install_log_redaction
from presence.web.limits import Limits
from tests.web.live import exchange, parse_answer

SECRET = "s3cret-key"
ADMIN = "Adm1nS3cret"
TOKEN = auth.sign(SECRET, "alice")
SIG = TOKEN.rsplit(".", 1)[1]  # what must never be written
FORGED = "9999999999.F0rgedS1gnature"
JOIN = "/channels/room/join?user=alice&conn=t1"


def request(target: str, headers: str = "", body: bytes = b"", method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body


def everything_logged(records) -> list[str]:
    """Each record as a handler would write it: message, arguments and traceback."""
    lines = []
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        if record.exc_info and not record.exc_text:
            text += "".join(traceback.format_exception(*record.exc_info))
        lines.append(text)
    return lines


@pytest.mark.gen_test
async def test_no_token_reaches_a_log_whatever_the_request(start_node, caplog, monkeypatch):
    install_log_redaction()
    node = start_node(
        Limits(max_body_size=1000, max_url_length=300, max_header_size=3000),
        secret=SECRET,
        admin_token=f"ops={ADMIN}",
    )
    client = AsyncHTTPClient()
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    mine = f"{JOIN}&token={TOKEN}"
    post = "Content-Type: application/json\r\n"
    with caplog.at_level(logging.DEBUG):
        answers = [
            (await client.fetch(node.url + mine, raise_error=False)).code,
            (await client.fetch(node.url + f"{JOIN}&token={FORGED}", raise_error=False)).code,
            (await client.fetch(node.url + f"{JOIN}&%74oken={FORGED}", raise_error=False)).code,
            (await client.fetch(node.url + "/api/channels", headers={
                "Authorization": f"Bearer {ADMIN}x"}, raise_error=False)).code,
            (await client.fetch(node.url + "/api/channels/nowhere?token=" + TOKEN,
                                headers=bearer, raise_error=False)).code,
        ]  # fmt: skip
        assert answers == [200, 403, 403, 401, 404]
        raw = [  # answered below the application, or by Tornado
            request(mine + "&info=" + "x" * 400, f"Authorization: Bearer {ADMIN}\r\n"),  # 414
            request(mine + "&info=" + "x" * 4000),  # 414, the line longer than the headers
            request(mine, f"Authorization: Bearer {ADMIN}\r\nX-Big: {'y' * 3000}\r\n"),  # 431
            request(mine, f"{post}Content-Length: 5000\r\nAuthorization: Bearer {ADMIN}\r\n",
                    method="POST"),  # 413
            request(mine, f"{post}Transfer-Encoding: chunked\r\n", b"2000\r\n", "POST"),  # 413
            request(mine, f"{post}Content-Length: abc\r\n", method="POST"),  # malformed
            request(mine, f"Authorization: Bearer {ADMIN}\x01\r\n"),  # malformed header
            request(mine, f"Authorization: Basic {ADMIN}\x01\r\n"),
            request(mine, f"X-Token: {TOKEN}\x01\r\n"),
            request(f"/api/channels?token={TOKEN}&limit=0", f"Authorization: Bearer {ADMIN}\r\n"),
        ]  # fmt: skip
        statuses = [parse_answer(await exchange(node.port, data, 3))[0] for data in raw]
        assert statuses == [414, 414, 431, 413, 413, 400, 400, 400, 400, 400]

        async def broken(*args, **kwargs):
            raise RuntimeError(f"a bug while serving {mine} with Bearer {ADMIN}")

        monkeypatch.setattr(node.model, "join", broken)
        failed = await client.fetch(node.url + mine, headers=bearer, raise_error=False)
        assert failed.code == 500
    logged = everything_logged(caplog.records)
    assert any("Uncaught exception" in line for line in logged)
    assert any("Malformed HTTP message" in line for line in logged)
    leaks = [line for line in logged if SIG in line or ADMIN in line or "F0rged" in line]
    assert not leaks, leaks
