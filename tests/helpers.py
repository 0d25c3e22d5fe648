"""Helpers shared by every test package (import them; fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from presence.testing import ToolMissing, find_tool, require_all

T = TypeVar("T")


class ClusterURL(str):
    """The URL of a Redis Cluster node (tests.service.helpers.make_presence then routes by
    slot)."""


def missing_tool(exc: ToolMissing):
    """Skip the running test for a missing tool, or fail it under REQUIRE_ALL=1."""
    if require_all():
        pytest.fail(f"{exc.tool} is required (REQUIRE_ALL=1) but not on PATH")
    pytest.skip(f"{exc.tool} not installed")


def need_tool(name: str) -> str:
    """Return the path of executable `name`; skip the test without it (fail under REQUIRE_ALL)."""
    try:
        return find_tool(name)
    except ToolMissing as exc:
        missing_tool(exc)


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call `predicate` until it returns something truthy and return that; fail the test
    with `message` (a string, or a function called then) and the last value seen if
    `timeout` seconds pass first.

    Use it instead of sleeping a fixed time and then asserting: it returns as soon as the
    condition holds and waits longer on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(message, timeout, value))
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] | None = None,
) -> T:
    """`wait_until` for coroutines: `predicate` may be a plain or an async function; the
    event loop keeps running between the calls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(message, timeout, value))
        await asyncio.sleep(interval)


def _timed_out(message, timeout: float, value) -> str:
    text = message() if callable(message) else message
    return f"{text or 'condition not met'} after {timeout}s (last value: {value!r})"
