"""GEO commands over sorted sets: GEOADD, GEOPOS, GEODIST, GEOHASH, GEORADIUS(_RO),
GEORADIUSBYMEMBER(_RO), GEOSEARCH, GEOSEARCHSTORE, as Redis 7.0's geo.c.

A member's score is its 52-bit geohash (presence/store/geohash.py), so a GEO set is a zset
(ZRANGE, ZREM... work on it). The searches share `search_generic`, Redis's
georadiusGeneric: the same option parsing order, errors, box walk and result order.
"""

from __future__ import annotations

from presence.store import geohash, replies
from presence.store.commands import CommandError, KeySpec, command
from presence.store.commands.generic import read_key
from presence.store.commands.zset import store_result, zadd_generic
from presence.store.geohash import Shape
from presence.store.numbers import parse_double, parse_int
from presence.store.resp import NIL_ARRAY, DoubleText
from presence.store.zset import ZSet

# name                    arity  flags
# geoadd                   -5    write denyoom
# geopos, geohash          -2    readonly
# geodist                  -4    readonly
# georadius                -6    write denyoom movablekeys    georadius_ro -6 readonly
# georadiusbymember        -5    write denyoom movablekeys    georadiusbymember_ro -5 readonly
# geosearch                -7    readonly
# geosearchstore           -8    write denyoom

_UNIT_ERROR = "ERR unsupported unit provided. please use M, KM, FT, MI"


def _lonlat(a: bytes, b: bytes) -> tuple[float, float]:
    """extractLongLatOrReply: a longitude and a latitude inside Redis's ranges."""
    lon, lat = parse_double(a), parse_double(b)
    if not (geohash.LONG_MIN <= lon <= geohash.LONG_MAX) or not (
        geohash.LAT_MIN <= lat <= geohash.LAT_MAX
    ):
        raise CommandError("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(raw: bytes) -> float:
    conversion = geohash.UNITS.get(raw.lower())
    if conversion is None:
        raise CommandError(_UNIT_ERROR)
    return conversion


def _coordinate(value: float) -> DoubleText:
    """addReplyHumanLongDouble: a bulk string, or a RESP3 double, of `%.17Lf` text."""
    return DoubleText(geohash.format_coordinate(value))


def _zset(client, key: bytes) -> ZSet | None:
    """lookupKeyRead + checkType."""
    return read_key(client.db, key, ZSet)


@command("geoadd", -5, "write denyoom", specs=(("RW update", 1, 0, 1),), acl="geo")
def geoadd(client, argv):
    """Add one or more geospatial items in the geospatial index represented using a sorted set"""
    flags = set()
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if option not in (b"nx", b"xx", b"ch"):
            break
        flags.add(option)
        i += 1
    if (len(argv) - i) % 3 or {b"nx", b"xx"} <= flags:
        raise CommandError(replies.SYNTAX)
    if i == len(argv):  # no triple: ZADD's own syntax error
        raise CommandError(replies.SYNTAX)
    pairs = []
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        pairs.append((float(geohash.score_of(lon, lat)), argv[j + 2]))
    return zadd_generic(client, argv[1], flags, pairs)


@command("geopos", -2, "readonly", acl="geo")
def geopos(client, argv):
    """Returns longitude and latitude of members of a geospatial index"""
    zset = _zset(client, argv[1])
    out: list = []
    for member in argv[2:]:
        score = None if zset is None else zset.score(member)
        if score is None:
            out.append(NIL_ARRAY)
        else:
            lon, lat = geohash.decode_score(score)
            out.append([_coordinate(lon), _coordinate(lat)])
    return out


@command("geodist", -4, "readonly", acl="geo")
def geodist(client, argv):
    """Returns the distance between two members of a geospatial index"""
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(replies.SYNTAX)
    zset = _zset(client, argv[1])
    if zset is None:
        return None
    first, second = zset.score(argv[2]), zset.score(argv[3])
    if first is None or second is None:
        return None
    lon1, lat1 = geohash.decode_score(first)
    lon2, lat2 = geohash.decode_score(second)
    return geohash.format_distance(geohash.distance(lon1, lat1, lon2, lat2) / to_meter)


@command("geohash", -2, "readonly", acl="geo")
def geohash_(client, argv):
    """Returns members of a geospatial index as standard geohash strings"""
    zset = _zset(client, argv[1])
    out: list = []
    for member in argv[2:]:
        score = None if zset is None else zset.score(member)
        out.append(None if score is None else geohash.geohash_string(score))
    return out


# ------------------------------------------------------------------ searches

RADIUS_COORDS, RADIUS_MEMBER, RADIUS_NOSTORE, GEOSEARCH, GEOSEARCHSTORE = 1, 2, 4, 8, 16


def _distance_args(raw: bytes, unit: bytes) -> tuple[float, float]:
    """extractDistanceOrReply: (radius, conversion)."""
    radius = parse_double(raw, "ERR need numeric radius")
    if radius < 0:
        raise CommandError("ERR radius cannot be negative")
    return radius, _unit(unit)


def _box_args(w: bytes, h: bytes, unit: bytes) -> tuple[float, float, float]:
    """extractBoxOrReply: (width, height, conversion)."""
    width = parse_double(w, "ERR need numeric width")
    height = parse_double(h, "ERR need numeric height")
    if height < 0 or width < 0:
        raise CommandError("ERR height or width cannot be negative")
    return width, height, _unit(unit)


def _member_position(zset: ZSet, member: bytes) -> tuple[float, float]:
    score = zset.score(member)
    if score is None:
        raise CommandError("ERR could not decode requested zset member")
    return geohash.decode_score(score)


def search_generic(client, argv, src: int, flags: int):
    """georadiusGeneric: find the members in a circle or box, reply or store them."""
    db = client.db
    zset = read_key(db, argv[src], ZSet)
    shape = Shape()
    store_key: bytes | None = None
    store_dist = False
    if flags & RADIUS_COORDS:
        base = 6
        shape.lon, shape.lat = _lonlat(argv[2], argv[3])
        shape.radius, shape.conversion = _distance_args(argv[4], argv[5])
    elif flags & RADIUS_MEMBER and zset is None:
        base = 5
    elif flags & RADIUS_MEMBER:
        base = 5
        assert zset is not None
        shape.lon, shape.lat = _member_position(zset, argv[2])
        shape.radius, shape.conversion = _distance_args(argv[3], argv[4])
    else:
        base = 2
        if flags & GEOSEARCHSTORE:
            base = 3
            store_key = argv[1]
    withdist = withhash = withcoord = any_ = False
    frommember = fromloc = byradius = bybox = False
    sort = 0  # 1 ascending, 2 descending
    count = 0
    remaining = len(argv) - base
    i = 0
    while i < remaining:
        arg = argv[base + i].lower()
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoord = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            sort = 1
        elif arg == b"desc":
            sort = 2
        elif arg == b"count" and i + 1 < remaining:
            count = parse_int(argv[base + i + 1])
            if count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif (
            arg in (b"store", b"storedist")
            and i + 1 < remaining
            and not flags & RADIUS_NOSTORE
            and not flags & GEOSEARCH
        ):
            store_key = argv[base + i + 1]
            store_dist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & GEOSEARCH and flags & GEOSEARCHSTORE:
            store_dist = True
        elif arg == b"frommember" and i + 1 < remaining and flags & GEOSEARCH and not fromloc:
            if zset is not None:
                shape.lon, shape.lat = _member_position(zset, argv[base + i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and flags & GEOSEARCH and not frommember:
            shape.lon, shape.lat = _lonlat(argv[base + i + 1], argv[base + i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and flags & GEOSEARCH and not bybox:
            shape.radius, shape.conversion = _distance_args(argv[base + i + 1], argv[base + i + 2])
            byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and flags & GEOSEARCH and not byradius:
            shape.width, shape.height, shape.conversion = _box_args(
                *argv[base + i + 1 : base + i + 4]
            )
            shape.radius = None
            bybox = True
            i += 3
        else:
            raise CommandError(replies.SYNTAX)
        i += 1
    if store_key is not None and (withdist or withhash or withcoord):
        what = "GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(
            f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )
    name = argv[0].decode("utf-8", "replace")
    if flags & GEOSEARCH and not (frommember or fromloc):
        raise CommandError(
            f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )
    if flags & GEOSEARCH and not (byradius or bybox):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError("ERR the ANY argument requires COUNT argument")
    if zset is None:
        if store_key is not None:
            return store_result(client, store_key, [], b"")
        return []
    if count and not sort and not any_:
        sort = 1
    points = _points_in_shape(zset, shape, count if any_ else 0)
    if not points and store_key is None:
        return []
    returned = min(count, len(points)) if count else len(points)
    if sort:
        ordered = sorted(points, key=_by_distance, reverse=sort == 2)  # glibc's qsort: stable
        if returned < len(points) and _ties(ordered, returned):
            # Redis's partial quicksort: the same as a sort but for equal distances
            geohash.pqsort(points, _ascending if sort == 1 else _descending, 0, returned - 1)
        else:
            points = ordered
    points = points[:returned]
    conversion = shape.conversion
    if store_key is not None:
        pairs = [(dist / conversion if store_dist else score, member)
                 for member, score, _, _, dist in points]  # fmt: skip
        event = b"geosearchstore" if flags & GEOSEARCH else b"georadiusstore"
        return store_result(client, store_key, pairs, event)
    if not (withdist or withhash or withcoord):
        return [point[0] for point in points]
    out = []
    for member, score, lon, lat, dist in points:
        item: list = [member]
        if withdist:
            item.append(geohash.format_distance(dist / conversion))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([_coordinate(lon), _coordinate(lat)])
        out.append(item)
    return out


def _by_distance(point) -> float:
    return point[4]


def _ties(ordered: list, n: int) -> bool:
    """Whether two of the first n + 1 sorted points are at the same distance."""
    return any(ordered[i][4] == ordered[i + 1][4] for i in range(min(n, len(ordered) - 1)))


def _ascending(a, b) -> int:
    """sort_gp_asc."""
    return 1 if a[4] > b[4] else 0 if a[4] == b[4] else -1


def _descending(a, b) -> int:
    return -_ascending(a, b)


def _points_in_shape(zset: ZSet, shape: Shape, limit: int) -> list:
    """membersOfAllNeighbors: (member, score, lon, lat, distance) of the points inside,
    box by box in Redis's order; with `limit` (ANY), stops once that many are found."""
    found: list = []
    boxes = shape.boxes()
    order = zset.order
    last = 0
    for i, box in enumerate(boxes):
        if box == (0, 0):
            continue
        if last and box == boxes[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        low, high = geohash.box_scores(box)
        start, end = zset.index_range_by_score(float(low), False, float(high), True)
        shape.scan(order[start:end], found, limit)
        last = i
    return found


def georadius_getkeys(argv: list[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    """Redis's georadiusGetKeys: the key, and the last STORE/STOREDIST destination."""
    stored = -1
    i = 5
    while i < len(argv):
        if argv[i].lower() in (b"store", b"storedist") and i + 1 < len(argv):
            stored = i + 1
            i += 1
        i += 1
    return [(1, ())] + ([(stored, ())] if stored != -1 else [])


def _store_specs(start: int) -> tuple:
    return (
        ("RO access", 1, 0, 1),
        KeySpec(("OW", "update"), start, keyword="STORE"),
        KeySpec(("OW", "update"), start, keyword="STOREDIST"),
    )


@command(
    "georadius",
    -6,
    "write denyoom movablekeys",
    specs=_store_specs(6),
    getkeys=georadius_getkeys,
    acl="geo",
)
def georadius(client, argv):
    """Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point"""
    return search_generic(client, argv, 1, RADIUS_COORDS)


@command("georadius_ro", -6, "readonly", acl="geo")
def georadius_ro(client, argv):
    """A read-only variant for GEORADIUS"""
    return search_generic(client, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)


@command(
    "georadiusbymember",
    -5,
    "write denyoom movablekeys",
    specs=_store_specs(5),
    getkeys=georadius_getkeys,
    acl="geo",
)
def georadiusbymember(client, argv):
    """Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member"""
    return search_generic(client, argv, 1, RADIUS_MEMBER)


@command("georadiusbymember_ro", -5, "readonly", acl="geo")
def georadiusbymember_ro(client, argv):
    """A read-only variant for GEORADIUSBYMEMBER"""
    return search_generic(client, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)


@command("geosearch", -7, "readonly", acl="geo")
def geosearch(client, argv):
    """Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle."""
    return search_generic(client, argv, 1, GEOSEARCH)


@command(
    "geosearchstore",
    -8,
    "write denyoom",
    keys=(1, 2, 1),
    specs=(("OW update", 1, 0, 1), ("RO access", 2, 0, 1)),
    acl="geo",
)
def geosearchstore(client, argv):
    """Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key."""
    return search_generic(client, argv, 2, GEOSEARCH | GEOSEARCHSTORE)
