"""Helpers for tests against a live node on a socket: raw HTTP exchanges, strict JSON."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import NoReturn

from presence.service.model import Presence

JSONP = re.compile(r"^/\*\*/ typeof ([\w$.]+) === 'function' && \1\((.*)\);$", re.S)


@dataclass
class Node:
    """A node serving on 127.0.0.1:`port` (see the `start_node` fixture)."""

    port: int
    model: Presence
    server: object

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def strict_loads(text: str | bytes) -> object:
    """json.loads that refuses what RFC 8259 does not allow (NaN, Infinity, lone
    surrogates: those are refused by encoding the text back as strict UTF-8)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # strict: a lone surrogate cannot be in UTF-8 bytes
    value = json.loads(text, parse_constant=_no_constant)
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")  # (raises)
    return value


def answer_json(body: bytes) -> object:
    """The JSON of an answer body, JSONP unwrapped; ValueError when it is not strict."""
    text = body.decode("utf-8")
    match = JSONP.match(text)
    return strict_loads(match.group(2) if match else text)


async def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` on a new connection and return everything read until the node closes
    it (or `timeout`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        chunks = []
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        except (ConnectionError, TimeoutError):
            pass
        return b"".join(chunks)
    finally:
        writer.close()


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lowercase names, body) of one raw HTTP/1.1 answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body
