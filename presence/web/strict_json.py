"""JSON in, strictly: what RFC 8259 allows and every JSON reader accepts, nothing else.

Python's json module accepts NaN, Infinity and -Infinity (and 1e999, which it reads as
infinity), strings with lone surrogates ("\\ud800", which no UTF-8 encoder can write) and
nesting as deep as its recursion limit (deeper raises RecursionError). `loads` refuses all
of these, so what a client sends can always be stored, encoded and read back as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import NoReturn

MAX_DEPTH = 32  # default nesting limit of arrays and objects (--max-json-depth)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins valid pairs


class StrictJSONError(ValueError):
    """The text is not strict JSON; the message says why (without quoting the text)."""


def _no_constant(name: str) -> NoReturn:
    raise StrictJSONError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("numbers must be finite")
    return value


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> object:
    """The value of `text`; StrictJSONError when it is not JSON, has a non-finite number,
    a lone surrogate in a string, or arrays/objects nested deeper than `max_depth`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError("JSON text must be UTF-8") from None
    if _nesting(text) > max_depth:
        raise StrictJSONError(f"JSON must not nest deeper than {max_depth}")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError):
        raise StrictJSONError("not valid JSON") from None
    _check_strings(value)
    return value


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """The nesting depth of arrays and objects in `text` (an upper bound when the text is
    not JSON), found without recursion, so a deep text is refused before it is parsed."""
    if "[" not in text and "{" not in text:
        return 0
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_strings(value: object) -> None:
    """StrictJSONError when a string (key or value) anywhere in `value` has a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _LONE_SURROGATE.search(item):
                raise StrictJSONError("strings must not hold lone surrogates (\\ud800-\\udfff)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def dumps(value: object) -> str:
    """Compact JSON of a value read by `loads` (never NaN or Infinity: ValueError)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
