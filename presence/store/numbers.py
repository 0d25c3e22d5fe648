"""Every number, cursor and scan-option parser of the store, read the way Redis reads them.

- integers: `as_int64` (Redis's string2ll: no spaces, no '+', no leading zeros, 64 bits),
  `atoi` (C's atoi, where Redis uses it),
  `parse_int` (getLongLongFromObjectOrReply), `parse_c_int` (getIntFromObjectOrReply),
  `parse_range` (getRangeLongFromObjectOrReply);
- doubles: `strtod` (C's strtod over the whole text), on which `parse_double`
  (getDoubleFromObject: ZADD scores, weights, timeouts), `parse_score_bound` (ZRANGEBYSCORE's
  min/max) and `parse_sort_double` (SORT's comparison values) are built;
- long doubles: `LongDouble` and `parse_long_double` (string2ld, x87 80-bit arithmetic and
  `%.17Lf` printing) for INCRBYFLOAT and HINCRBYFLOAT;
- SCAN's cursor (`parse_cursor`) and MATCH/COUNT/TYPE options (`scan_options`), shared by
  SCAN, HSCAN, SSCAN and ZSCAN.

Every parser raises `CommandError` with Redis's text (or returns None where the caller picks
the error), so replies stay byte-identical to redis-server's (tests/store/test_numbers.py).
"""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction

from presence.store import replies
from presence.store.replies import CommandError
from presence.store.resp import Error

# ------------------------------------------------------------ integers

_INT64 = re.compile(rb"-?[1-9][0-9]{0,18}|0")
_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63


def as_int64(raw: bytes) -> int | None:
    """`raw` as Redis's string2ll reads it (no spaces, no '+', no leading zeros, "-0" refused,
    fits a signed 64-bit integer), or None."""
    if _INT64.fullmatch(raw) is None:
        return None
    value = int(raw)
    return value if _INT64_MIN <= value < _INT64_END else None


_ULL = re.compile(rb"[ \t\n\x0b\x0c\r]*([+-]?)([0-9]+)")
_NEGATIVE = re.compile(rb"-[1-9][0-9]*")
_UINT64_MAX = (1 << 64) - 1


def string2ull(raw: bytes) -> int | None:
    """Redis's string2ull: string2ll (negatives refused), else strtoull over the whole text
    (leading spaces and a sign allowed, a negative wrapping modulo 2**64), or None."""
    if _NEGATIVE.fullmatch(raw) and int(raw) >= _INT64_MIN:
        return None
    match = _ULL.fullmatch(raw)
    if match is None:
        return None
    value = int(match.group(2))
    if value > _UINT64_MAX:
        return None
    return (-value) & _UINT64_MAX if match.group(1) == b"-" else value


_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def atoi(raw: bytes) -> int:
    """`raw` as glibc's atoi reads it: `(int) strtol(raw, NULL, 10)`, leading spaces and a
    sign allowed, stopping at the first other character (0 if no digits), 64-bit clamped,
    then cut to a C int."""
    match = _ATOI.match(raw)
    if match is None:
        return 0
    value = min(max(int(match.group(1)), _INT64_MIN), _INT64_END - 1) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def parse_int(raw: bytes, error: Error | str | None = None) -> int:
    """An integer argument as Redis parses it (string2ll); `error` replaces Redis's default
    "value is not an integer or out of range"."""
    value = as_int64(raw)
    if value is None:
        raise CommandError(error or replies.NOT_INTEGER)
    return value


def parse_c_int(raw: bytes) -> int:
    """An argument Redis reads as a C int (getIntFromObjectOrReply): 64-bit, then 32-bit range."""
    value = parse_int(raw)
    if not -(1 << 31) <= value < (1 << 31):
        raise CommandError(replies.INT_OUT_OF_RANGE)
    return value


def parse_range(raw: bytes, low: int, high: int, error: str | None = None) -> int:
    """A long argument within [low, high], with Redis's getRangeLongFromObjectOrReply errors."""
    value = parse_int(raw, error)
    if not low <= value <= high:
        raise CommandError(
            error or f"ERR value is out of range, value must between {low} and {high}"
        )
    return value


# ------------------------------------------------------------ doubles

_WHITESPACE = b" \t\n\v\f\r"  # C's isspace in the "C" locale
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?i:inf(?:inity)?|nan)))"
)


def strtod(text: bytes) -> tuple[float, bool] | None:
    """`text` read whole by C's strtod (leading whitespace allowed; decimal, hex, inf, nan):
    (value, erange), or None if strtod would stop before the end or convert nothing.

    `erange` is strtod's ERANGE: an overflow to +-inf, an underflow to zero or to a
    subnormal (getDoubleFromObject forgives the subnormal, SORT does not).
    """
    match = _STRTOD.fullmatch(text)
    if match is None:
        return None
    number = match[1]
    body = number.lstrip(b"+-")
    hexadecimal = body[:2].lower() == b"0x"
    if hexadecimal:
        try:
            value = float.fromhex(number.decode())
        except OverflowError:
            value = -math.inf if number[:1] == b"-" else math.inf
    else:
        value = float(number)
    if math.isinf(value):
        return value, body[:1] not in b"iI"  # a literal inf is no overflow
    if value == 0.0:
        mantissa = body[2:].lower().split(b"p")[0] if hexadecimal else body.lower().split(b"e")[0]
        return value, any(c not in b"0." for c in mantissa)
    return value, abs(value) < sys.float_info.min  # a subnormal result: glibc's ERANGE too


def parse_double(raw: bytes, error: Error | str = replies.NOT_FLOAT) -> float:
    """A score, increment, weight or timeout as Redis's getDoubleFromObject reads it: not
    empty, no leading space, no NaN, no overflow or underflow to zero."""
    parsed = strtod(raw) if raw and raw[0] not in _WHITESPACE else None
    if parsed is None or parsed[0] != parsed[0]:
        raise CommandError(error)
    value, erange = parsed
    if erange and (value == 0 or math.isinf(value)):
        raise CommandError(error)
    return value


def parse_score_bound(raw: bytes, error: str) -> tuple[float, bool]:
    """`1.5`, `(1.5`, `-inf`, `+inf` as (value, exclusive), as Redis's zslParseRange reads it
    (strtod: "" is 0, leading spaces and overflows are accepted, NaN is not)."""
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    if not text:
        return 0.0, exclusive  # strtod("") is 0 and Redis accepts it
    parsed = strtod(text)
    if parsed is None or parsed[0] != parsed[0]:
        raise CommandError(error)
    return parsed[0], exclusive


def parse_sort_double(text: bytes) -> float | None:
    """`text` as SORT compares it (strtod over the whole string, leading whitespace allowed,
    "" is 0); None for anything else, NaN, or a value out of a double's range."""
    if not text:
        return 0.0  # strtod converts nothing and stops at the end: Redis takes 0
    parsed = strtod(text)
    if parsed is None or parsed[1] or parsed[0] != parsed[0]:
        return None
    return parsed[0]


# ------------------------------------------------------------ long doubles

_LD_DECIMAL = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LD_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?\d+))?")
_LD_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
_LD_MAX_CHARS = 5 * 1024  # MAX_LONG_DOUBLE_CHARS: longer strings are not floats to Redis


class LongDouble:
    """An x87 80-bit extended float (64-bit significand), the `long double` Redis adds in.

    Held as an exact Fraction already rounded to the format, or as +-inf (`inf` is 1 or -1;
    2 is NaN).
    """

    __slots__ = ("value", "inf")
    SIGNIFICAND = 64
    MIN_EXP = -16382  # smallest normal exponent; below it the quantum stays 2**-16445
    MAX_EXP = 16383
    ZERO: LongDouble

    def __init__(self, value: Fraction, inf: int = 0) -> None:
        self.value, self.inf = value, inf

    @classmethod
    def rounded(cls, exact: Fraction) -> LongDouble:
        """The long double nearest to `exact` (ties to even); +-inf past the largest."""
        if exact == 0:
            return cls(Fraction(0))
        num, den = abs(exact.numerator), exact.denominator
        exp = num.bit_length() - den.bit_length()
        if (num << max(0, -exp)) < (den << max(0, exp)):
            exp -= 1
        if exp > cls.MAX_EXP:
            return cls(Fraction(0), 1 if exact > 0 else -1)
        quantum = max(exp, cls.MIN_EXP) - (cls.SIGNIFICAND - 1)
        if quantum < 0:
            num <<= -quantum
        else:
            den <<= quantum
        n, rem = divmod(num, den)
        if 2 * rem > den or (2 * rem == den and n & 1):
            n += 1
        if n.bit_length() + quantum > cls.MAX_EXP + 1:
            return cls(Fraction(0), 1 if exact > 0 else -1)
        magnitude = Fraction(n << quantum) if quantum >= 0 else Fraction(n, 1 << -quantum)
        return cls(magnitude if exact > 0 else -magnitude)

    def is_finite(self) -> bool:
        return not self.inf

    def __add__(self, other: LongDouble) -> LongDouble:
        if self.inf or other.inf:
            inf = self.inf + other.inf
            return LongDouble(Fraction(0), inf) if inf else LongDouble(Fraction(0), 2)  # 2: nan
        return LongDouble.rounded(self.value + other.value)

    def human(self) -> bytes:
        """`%.17Lf` with trailing zeros (and a bare '.') removed, `-0` as `0` (LD_STR_HUMAN)."""
        scaled = self.value * 10**17
        units = round(abs(scaled))  # exact value, ties to even, like glibc printf
        whole, frac = divmod(units, 10**17)
        text = ("%s.%017d" % (_int_to_text(whole), frac)).rstrip("0").rstrip(".")
        if self.value < 0 and text != "0":
            text = "-" + text
        return text.encode()


LongDouble.ZERO = LongDouble(Fraction(0))


def parse_long_double(raw: bytes) -> LongDouble | None:
    """`raw` as Redis's string2ld reads it (strtold: decimal, hex, inf), or None if invalid.

    Invalid: empty, too long, leading space or trailing junk, nan, and values strtold
    reports as out of range (overflow, or underflow to zero).
    """
    if not raw or len(raw) >= _LD_MAX_CHARS:
        return None
    if _LD_INFINITY.fullmatch(raw):
        return LongDouble(Fraction(0), -1 if raw[:1] == b"-" else 1)
    if _LD_DECIMAL.fullmatch(raw):
        exact = _decimal_fraction(raw)
    else:
        match = _LD_HEX.fullmatch(raw)
        if match is None or not (match[2] or match[3]):
            return None
        exact = _hex_fraction(*match.groups())
    if exact is None:
        return None
    result = LongDouble.rounded(exact)
    if not result.is_finite() or (result.value == 0 and exact != 0):
        return None
    return result


def _decimal_fraction(raw: bytes) -> Fraction | None:
    """The exact value of a decimal literal; None when its exponent is far out of range."""
    mantissa, _, exponent = raw.lower().partition(b"e")
    digits = mantissa.lstrip(b"+-").replace(b".", b"").lstrip(b"0")
    if not digits:
        return Fraction(0)
    exp10 = int(exponent or b"0")
    if not -6000 < exp10 + len(mantissa) < 6000:  # beyond any long double
        return None
    whole, _, frac = mantissa.lstrip(b"+-").partition(b".")
    exp10 -= len(frac)
    value = _text_to_int(whole + frac) * Fraction(10) ** exp10
    return -value if mantissa[:1] == b"-" else value


# Python refuses int <-> decimal text conversions beyond 4300 digits; long doubles reach 4933
_CHUNK = 4000


def _text_to_int(digits: bytes) -> int:
    if len(digits) <= _CHUNK:
        return int(digits)
    return _text_to_int(digits[:-_CHUNK]) * 10**_CHUNK + int(digits[-_CHUNK:])


def _int_to_text(n: int) -> str:
    if n < 10**_CHUNK:
        return "%d" % n
    high, low = divmod(n, 10**_CHUNK)
    return _int_to_text(high) + "%0*d" % (_CHUNK, low)


def _hex_fraction(
    sign: bytes, whole: bytes, frac: bytes, exponent: bytes | None
) -> Fraction | None:
    """The exact value of a hex float literal; None when its exponent is far out of range."""
    digits = (whole + frac).lstrip(b"0")
    if not digits:
        return Fraction(0)
    exp2 = int(exponent or b"0") - 4 * len(frac)
    if not -20000 < exp2 + 4 * len(digits) < 20000:
        return None
    value = Fraction(int(whole + frac, 16)) * Fraction(2) ** exp2
    return -value if sign == b"-" else value


# ------------------------------------------------------------ SCAN cursors and options

_CURSOR = re.compile(rb"([+-]?)([0-9]*)")
INVALID_CURSOR = "ERR invalid cursor"


def parse_cursor(raw: bytes) -> int:
    """A cursor read the way Redis's parseScanCursorOrReply reads it (strtoul, no leading
    space): "" is 0, "-1" wraps to 2**64-1, a sign alone or 2**64 is invalid."""
    m = _CURSOR.fullmatch(raw)
    if m is None or (m[1] and not m[2]):
        raise CommandError(INVALID_CURSOR)
    value = int(m[2] or b"0")
    if value >= 1 << 64:
        raise CommandError(INVALID_CURSOR)
    return -value % (1 << 64) if m[1] == b"-" else value


def scan_options(options: list[bytes], with_type: bool = False):
    """(match, count, type) from MATCH/COUNT/TYPE pairs; match is None for `*`.

    Without `with_type` (HSCAN, SSCAN, ZSCAN) TYPE is a syntax error, reported after a bad
    option before it, in Redis's order.
    """
    match, count, kind = None, 10, None
    i = 0
    while i < len(options):
        option = options[i].lower()
        if i + 1 >= len(options):
            raise CommandError(replies.SYNTAX)
        value = options[i + 1]
        if option == b"match":
            match = None if value == b"*" else value
        elif option == b"count":
            count = parse_int(value)
            if count < 1:
                raise CommandError(replies.SYNTAX)
        elif option == b"type" and with_type:
            kind = value.decode(errors="replace").lower()
        else:
            raise CommandError(replies.SYNTAX)
        i += 2
    return match, count, kind
