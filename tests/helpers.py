"""Helpers shared by every test package (import them; fixtures live in conftest.py)."""

from __future__ import annotations

import pytest

from presence.testing import ToolMissing, find_tool, require_all


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
