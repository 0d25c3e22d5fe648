"""Geohash arithmetic as Redis 7.0 does it (geohash.c, geohash_helper.c, parts of geo.c).

A position is stored as a sorted-set score: its 26-step geohash (52 interleaved bits,
latitude on the even bits) over longitude -180..180 and latitude -85.05112878..85.05112878.
A search covers the box of the centre's geohash at a step chosen from the radius, and its
eight neighbours, then keeps the points inside the circle or rectangle; every step here is
Redis's, in its order and its double arithmetic, so the same members come back with the
same distances. Sans-IO: numbers in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEP_MAX = 26
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
D_R = math.pi / 180.0
EARTH_RADIUS = 6372797.560856
MERCATOR_MAX = 20037726.37
_MASK64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}

Range = tuple[float, float]  # (min, max)
Hash = tuple[int, int]  # (bits, step); (0, 0) is "no box"
Area = tuple[float, float, float, float]  # lon min, lon max, lat min, lat max


def _interleave64(xlo: int, ylo: int) -> int:
    x, y = xlo & 0xFFFFFFFF, ylo & 0xFFFFFFFF
    for shift, mask in (
        (16, 0x0000FFFF0000FFFF),
        (8, 0x00FF00FF00FF00FF),
        (4, 0x0F0F0F0F0F0F0F0F),
        (2, 0x3333333333333333),
        (1, 0x5555555555555555),
    ):
        x = (x | (x << shift)) & mask
        y = (y | (y << shift)) & mask
    return x | (y << 1)


def _deinterleave64(interleaved: int) -> int:
    x, y = interleaved, interleaved >> 1
    for shift, mask in (
        (0, 0x5555555555555555),
        (1, 0x3333333333333333),
        (2, 0x0F0F0F0F0F0F0F0F),
        (4, 0x00FF00FF00FF00FF),
        (8, 0x0000FFFF0000FFFF),
        (16, 0x00000000FFFFFFFF),
    ):
        x = (x | (x >> shift)) & mask
        y = (y | (y >> shift)) & mask
    return x | (y << 32)


def encode(lon: float, lat: float, step: int, lon_range: Range = (LONG_MIN, LONG_MAX),
           lat_range: Range = (LAT_MIN, LAT_MAX)) -> int | None:  # fmt: skip
    """geohashEncode: the interleaved bits, None where Redis's returns 0."""
    if step > 32 or step == 0:
        return None
    if lon > LONG_MAX or lon < LONG_MIN or lat > LAT_MAX or lat < LAT_MIN:
        return None
    if lat < lat_range[0] or lat > lat_range[1] or lon < lon_range[0] or lon > lon_range[1]:
        return None
    lat_offset = (lat - lat_range[0]) / (lat_range[1] - lat_range[0])
    lon_offset = (lon - lon_range[0]) / (lon_range[1] - lon_range[0])
    lat_offset *= float(1 << step)
    lon_offset *= float(1 << step)
    return _interleave64(int(lat_offset), int(lon_offset))


def decode(bits: int, step: int) -> Area:
    """geohashDecode over Redis's ranges: the box a hash names."""
    sep = _deinterleave64(bits)
    lat_scale, lon_scale = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN
    ilat, ilon = sep & 0xFFFFFFFF, (sep >> 32) & 0xFFFFFFFF
    div = float(1 << step)
    return (
        LONG_MIN + (ilon * 1.0 / div) * lon_scale,
        LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / div) * lon_scale,
        LAT_MIN + (ilat * 1.0 / div) * lat_scale,
        LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / div) * lat_scale,
    )


def score_to_bits(score: float) -> int:
    """(uint64_t) of a score, as x86-64 code compiled by GCC converts it."""
    if score != score:
        return 0
    if score < 9223372036854775808.0:
        if score <= -9223372036854775808.0 or math.isinf(score):
            return 1 << 63
        return int(score) & _MASK64
    if score >= 18446744073709551616.0:
        return 0
    return int(score)


def _halves(n: int) -> tuple[int, int]:
    even = odd = 0
    for bit in range(8):
        even |= ((n >> (2 * bit)) & 1) << bit
        odd |= ((n >> (2 * bit + 1)) & 1) << bit
    return even, odd


_EVEN_BITS = bytes(_halves(n)[0] for n in range(1 << 16))  # the even bits of 16, packed
_ODD_BITS = bytes(_halves(n)[1] for n in range(1 << 16))
_STEP_MAX_DIV = float(1 << STEP_MAX)
_LAT_SCALE, _LON_SCALE = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN


POSITION_CACHE = 65_536  # positions searches remember, by score (about 16 MB when full)


def decode_score(score: float) -> tuple[float, float]:
    """decodeGeohash: a member's longitude and latitude from its score (the box's centre,
    clamped to the valid ranges). Same arithmetic as `decode`, deinterleaving by table."""
    bits = int(score) if 0.0 <= score < 4503599627370496.0 else score_to_bits(score)
    e, o = _EVEN_BITS, _ODD_BITS
    w0, w1, w2, w3 = bits & 0xFFFF, (bits >> 16) & 0xFFFF, (bits >> 32) & 0xFFFF, bits >> 48
    ilat = e[w0] | (e[w1] << 8) | (e[w2] << 16) | (e[w3] << 24)
    ilon = o[w0] | (o[w1] << 8) | (o[w2] << 16) | (o[w3] << 24)
    lon = (
        (LONG_MIN + (ilon * 1.0 / _STEP_MAX_DIV) * _LON_SCALE)
        + (LONG_MIN + (((ilon + 1) & 0xFFFFFFFF) * 1.0 / _STEP_MAX_DIV) * _LON_SCALE)
    ) / 2
    lat = (
        (LAT_MIN + (ilat * 1.0 / _STEP_MAX_DIV) * _LAT_SCALE)
        + (LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) * 1.0 / _STEP_MAX_DIV) * _LAT_SCALE)
    ) / 2
    lon = LONG_MAX if lon > LONG_MAX else LONG_MIN if lon < LONG_MIN else lon
    lat = LAT_MAX if lat > LAT_MAX else LAT_MIN if lat < LAT_MIN else lat
    return lon, lat


def score_of(lon: float, lat: float) -> int:
    """GEOADD's score: the 26-step hash aligned to 52 bits."""
    bits = encode(lon, lat, STEP_MAX)
    return 0 if bits is None else bits


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11 characters: the position re-encoded over latitude -90..90."""
    lon, lat = decode_score(score)
    bits = encode(lon, lat, STEP_MAX, (-180.0, 180.0), (-90.0, 90.0)) or 0
    chars = [ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
    return bytes(chars) + b"0"


def _move(h: Hash, d: int, mine: int, other: int) -> Hash:
    """One cell east/west (`mine` the odd bits: longitude) or north/south (`mine` the even
    bits: latitude), as geohash_move_x/y: add or subtract one in the interleaved bits."""
    bits, step = h
    moved, kept = bits & mine, bits & other
    zz = other >> (64 - step * 2)
    if d > 0:
        moved = moved + (zz + 1)
    else:
        moved = (moved | zz) - (zz + 1)
    moved &= mine >> (64 - step * 2)
    return (moved | kept) & _MASK64, step


def _move_x(h: Hash, d: int) -> Hash:
    return _move(h, d, _ODD, _EVEN)


def _move_y(h: Hash, d: int) -> Hash:
    return _move(h, d, _EVEN, _ODD)


def neighbors(h: Hash) -> list[Hash]:
    """The 8 neighbours in membersOfAllNeighbors's order: N, S, E, W, NE, NW, SE, SW."""
    return [
        _move_y(h, 1),
        _move_y(h, -1),
        _move_x(h, 1),
        _move_x(h, -1),
        _move_y(_move_x(h, 1), 1),
        _move_y(_move_x(h, -1), 1),
        _move_y(_move_x(h, 1), -1),
        _move_y(_move_x(h, -1), -1),
    ]


def estimate_steps(range_meters: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine, in meters, on Redis's Earth radius."""
    lon1r, lon2r = lon1 * D_R, lon2 * D_R
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r, lat2r = lat1 * D_R, lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


@dataclass
class Shape:
    """A search area: a circle (`radius`) or a box (`width`, `height`) around `lon`, `lat`,
    sizes in the unit whose meters `conversion` gives."""

    lon: float = 0.0
    lat: float = 0.0
    conversion: float = 1.0
    radius: float | None = None
    width: float = 0.0
    height: float = 0.0

    def bounding_box(self) -> tuple[float, float, float, float]:
        """geohashBoundingBox: min lon, min lat, max lon, max lat."""
        circle = self.radius is not None
        height = self.conversion * (self.radius if circle else self.height / 2)  # type: ignore[operator]
        width = self.conversion * (self.radius if circle else self.width / 2)  # type: ignore[operator]
        lat_delta = (height / EARTH_RADIUS) / D_R
        top = (width / EARTH_RADIUS / math.cos((self.lat + lat_delta) * D_R)) / D_R
        bottom = (width / EARTH_RADIUS / math.cos((self.lat - lat_delta) * D_R)) / D_R
        delta = bottom if self.lat < 0 else top
        return (self.lon - delta, self.lat - lat_delta, self.lon + delta, self.lat + lat_delta)

    def boxes(self) -> list[Hash]:
        """geohashCalculateAreasByShapeWGS84 then membersOfAllNeighbors's list: the centre
        box and its neighbours, (0, 0) for the ones left out."""
        min_lon, min_lat, max_lon, max_lat = self.bounding_box()
        if self.radius is not None:
            radius_meters = self.radius
        else:
            half_w, half_h = self.width / 2, self.height / 2
            radius_meters = math.sqrt(half_w * half_w + half_h * half_h)
        radius_meters *= self.conversion
        steps = estimate_steps(radius_meters, self.lat)
        h: Hash = (encode(self.lon, self.lat, steps) or 0, steps)
        around = neighbors(h)
        north, south = decode(*around[0]), decode(*around[1])
        east, west = decode(*around[2]), decode(*around[3])
        decrease = (
            north[3] < max_lat or south[2] > min_lat or east[1] < max_lon or west[0] > min_lon
        )
        if steps > 1 and decrease:
            steps -= 1
            h = (encode(self.lon, self.lat, steps) or 0, steps)
            around = neighbors(h)
        area = decode(*h)
        if steps >= 2:
            zero = (0, 0)
            # indexes in `around`: N 0, S 1, E 2, W 3, NE 4, NW 5, SE 6, SW 7
            if area[2] < min_lat:
                around[1] = around[7] = around[6] = zero
            if area[3] > max_lat:
                around[0] = around[4] = around[5] = zero
            if area[0] < min_lon:
                around[3] = around[7] = around[5] = zero
            if area[1] > max_lon:
                around[2] = around[6] = around[4] = zero
        return [h, *around]

    def scan(self, pairs, found: list, limit: int) -> None:
        """geoGetPointsInRange's loop over (score, member) pairs: append (member, score,
        lon, lat, distance) for each point inside; stop once `limit` (if any) are found.
        geohashGetDistance inlined, with each point's radians and cosine remembered."""
        sin, asin, sqrt = math.sin, math.asin, math.sqrt
        clon_r, clat_r = self.lon * D_R, self.lat * D_R
        cos_clat = math.cos(clat_r)
        radius = None if self.radius is None else self.radius * self.conversion
        half_w, half_h = self.width * self.conversion / 2, self.height * self.conversion / 2
        append, two_r = found.append, 2.0 * EARTH_RADIUS
        for score, member in pairs:
            point = _POINTS.get(score)
            if point is None:
                point = _point(score)
            lon, lat, lon_r, lat_r, cos_lat = point
            if radius is None:  # box: latitude distance, then longitude distance at `lat`
                if EARTH_RADIUS * abs(clat_r - lat_r) > half_h:
                    continue
                v = sin((clon_r - lon_r) / 2)
                if v == 0.0:
                    if EARTH_RADIUS * abs(lat_r - lat_r) > half_w:
                        continue
                elif two_r * asin(sqrt(0.0 + cos_lat * cos_lat * v * v)) > half_w:
                    continue
            v = sin((lon_r - clon_r) / 2)
            if v == 0.0:
                dist = EARTH_RADIUS * abs(lat_r - clat_r)
            else:
                u = sin((lat_r - clat_r) / 2)
                dist = two_r * asin(sqrt(u * u + cos_clat * cos_lat * v * v))
            if radius is not None and dist > radius:
                continue
            append((member, score, lon, lat, dist))
            if limit and len(found) >= limit:
                return


_POINTS: dict[float, tuple[float, float, float, float, float]] = {}


def _point(score: float) -> tuple[float, float, float, float, float]:
    """A member's lon, lat, their radians and the latitude's cosine, remembered by score."""
    lon, lat = decode_score(score)
    lat_r = lat * D_R
    point = (lon, lat, lon * D_R, lat_r, math.cos(lat_r))
    if len(_POINTS) >= POSITION_CACHE:
        _POINTS.clear()
    _POINTS[score] = point
    return point


def box_scores(h: Hash) -> tuple[int, int]:
    """scoresOfGeoHashBox: the [min, max) scores of the members inside a box."""
    bits, step = h
    shift = 52 - step * 2
    return (bits << shift) & _MASK64, ((bits + 1) << shift) & _MASK64


def _med3(a: list, i: int, j: int, k: int, cmp) -> int:
    if cmp(a[i], a[j]) < 0:
        return j if cmp(a[j], a[k]) < 0 else (k if cmp(a[i], a[k]) < 0 else i)
    return j if cmp(a[j], a[k]) > 0 else (i if cmp(a[i], a[k]) < 0 else k)


def pqsort(a: list, cmp, lrange: int, rrange: int) -> None:
    """Redis's pqsort (pqsort.c): BSD quicksort that only sorts the parts overlapping
    positions lrange..rrange, in place. Not stable; the same order of equal elements as
    Redis's, which GEORADIUS ... COUNT shows for points at equal distances."""
    # addresses as pqsort.c computes them, with elements 2 units wide
    _pqsort(a, 0, len(a), cmp, lrange * 2, rrange * 2 + 1)


def _pqsort(a: list, base: int, n: int, cmp, low: int, high: int) -> None:
    while True:
        if n < 7:
            for m in range(base + 1, base + n):
                j = m
                while j > base and cmp(a[j - 1], a[j]) > 0:
                    a[j], a[j - 1] = a[j - 1], a[j]
                    j -= 1
            return
        m = base + n // 2
        if n > 7:
            first, last = base, base + n - 1
            if n > 40:
                d = n // 8
                first = _med3(a, first, first + d, first + 2 * d, cmp)
                m = _med3(a, m - d, m, m + d, cmp)
                last = _med3(a, last - 2 * d, last - d, last, cmp)
            m = _med3(a, first, m, last, cmp)
        a[base], a[m] = a[m], a[base]
        pa = pb = base + 1
        pc = pd = base + n - 1
        while True:
            while pb <= pc:
                result = cmp(a[pb], a[base])
                if result > 0:
                    break
                if result == 0:
                    a[pa], a[pb] = a[pb], a[pa]
                    pa += 1
                pb += 1
            while pb <= pc:
                result = cmp(a[pc], a[base])
                if result < 0:
                    break
                if result == 0:
                    a[pc], a[pd] = a[pd], a[pc]
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            a[pb], a[pc] = a[pc], a[pb]
            pb += 1
            pc -= 1
        pn = base + n
        r = min(pa - base, pb - pa)
        _vecswap(a, base, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(a, pb, pn - r, r)
        r = pb - pa
        if r > 1 and _overlaps(low, high, base, r):
            _pqsort(a, base, r, cmp, low, high)
        r = pd - pc
        if r <= 1:
            return
        base, n = pn - r, r
        if not _overlaps(low, high, base, n):
            return


def _overlaps(low: int, high: int, base: int, n: int) -> bool:
    start, end = base * 2, (base + n) * 2 - 1
    return not ((low < start and high < start) or (low > end and high > end))


def _vecswap(a: list, i: int, j: int, n: int) -> None:
    for k in range(n):
        a[i + k], a[j + k] = a[j + k], a[i + k]


def format_distance(d: float) -> bytes:
    """fixedpoint_d2string(d, 4): four decimals, rounded half to even."""
    if d == 0:
        return b"0.0000"
    scaled = d * 10000.0
    if math.isnan(scaled) or math.isinf(scaled) or abs(scaled) >= 9.3e18:
        value = -(1 << 63)  # llrint's result out of range
    else:
        value = round(scaled)
    sign = b"-" if value < 0 else b""
    value = abs(value)
    return b"%s%d.%04d" % (sign, value // 10000, value % 10000)


def format_coordinate(value: float) -> bytes:
    """addReplyHumanLongDouble's text: `%.17Lf` with trailing zeros (and dot) removed."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    text = (b"%.17f" % value).rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text
