"""GEO commands (presence/store/commands/geo.py, presence/store/geohash.py), differential
against redis-server: scores, replies byte for byte (RESP2 and RESP3), errors, stores."""

import random

import pytest
import redis

from presence.store import geohash
from tests.store.helpers import run

SICILY = ["13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]


def _points(rng: random.Random, n: int, lat_limit: float = 85.0) -> list[str]:
    args = []
    for i in range(n):
        args += [repr(rng.uniform(-180, 180)), repr(rng.uniform(-lat_limit, lat_limit)), f"m{i}"]
    return args


def test_geohash_helpers():
    assert geohash.format_distance(0.0) == b"0.0000"
    assert geohash.format_distance(0.00004) == b"0.0000"
    assert geohash.format_distance(166274.1516) == b"166274.1516"
    assert geohash.format_coordinate(-0.0) == b"0"
    bits = geohash.score_of(13.361389, 38.115556)
    assert bits == 3479099956230698
    lon, lat = geohash.decode_score(float(bits))
    assert abs(lon - 13.361389) < 1e-5 and abs(lat - 38.115556) < 1e-5


def test_geoadd_and_reads(pair, proto):
    run(
        pair,
        ["GEOADD", "Sicily", *SICILY],
        "ZRANGE Sicily 0 -1 WITHSCORES",
        "GEOPOS Sicily Palermo Catania nonexisting",
        "GEOPOS nokey a b",
        "GEODIST Sicily Palermo Catania",
        "GEODIST Sicily Palermo Catania km",
        "GEODIST Sicily Palermo Catania MI",
        "GEODIST Sicily Palermo Catania ft",
        "GEODIST Sicily Palermo Catania furlong",
        "GEODIST Sicily Palermo Catania km extra",
        "GEODIST Sicily Palermo nonexisting",
        "GEODIST nokey a b",
        "GEODIST nokey a b parsec",
        "GEODIST Sicily Palermo Palermo",
        "GEOHASH Sicily Palermo Catania nonexisting",
        "GEOHASH nokey a",
        "GEOHASH Sicily",
        "GEOPOS Sicily",
    )


def test_geoadd_options_and_errors(pair):
    run(
        pair,
        "GEOADD k 10 20 a",
        "GEOADD k NX 11 21 a 12 22 b",
        "GEOADD k XX 11 21 a 12 22 c",
        "GEOADD k XX CH 13 23 a 12 22 b",
        "GEOADD k CH 13 23 a 14 24 d",
        "GEOADD k ch nx xx 1 2 x",
        "GEOADD k NX XX 1 2 x",
        "GEOADD k GT 1 2 x",
        "GEOADD k CH CH CH",
        "GEOADD k 1 2",
        "GEOADD k 1 2 x 3",
        "GEOADD k 200 2 x",
        "GEOADD k 1 86 x",
        "GEOADD k 1 -85.05112879 x",
        "GEOADD k 180 85.05112878 edge",
        "GEOADD k -180 -85.05112878 edge2",
        "GEOADD k abc 2 x",
        "GEOADD k 1 nan x",
        "GEOADD k inf 2 x",
        "GEOADD k 1 2 ok 300 2 bad",
        "ZRANGE k 0 -1 WITHSCORES",
        "GEOPOS k edge edge2",
        "GEOHASH k edge edge2 a",
        "SET str x",
        "GEOADD str 1 2 x",
        "GEOPOS str x",
        "GEODIST str a b",
        "GEOHASH str x",
        "GEORADIUS str 0 0 10 km",
        "GEOSEARCH str FROMLONLAT 0 0 BYRADIUS 1 km",
    )


def test_non_geo_scores(pair, proto):
    """Members whose score is no geohash decode as Redis decodes them."""
    run(pair, "ZADD z -1 neg 0 zero 1e300 huge 4503599627370496 big 3.5 frac inf pinf -inf ninf")
    run(pair, "GEOPOS z neg zero huge big frac pinf ninf", "GEOHASH z neg zero huge big frac")
    run(pair, "GEODIST z neg huge", "GEODIST z zero frac km")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_searches_on_random_points(pair, seed):
    rng = random.Random(seed)
    pair.same("GEOADD", "pts", *_points(rng, 400))
    for _ in range(40):
        lon, lat = repr(rng.uniform(-180, 180)), repr(rng.uniform(-80, 80))
        radius = rng.choice(["10", "500", "2000", "5000", "0"])
        unit = rng.choice(["km", "m", "mi", "ft", "KM"])
        radius_m = radius
        extra = rng.choice([[], ["ASC"], ["DESC"], ["COUNT", "3"], ["COUNT", "5", "DESC"]])
        withs = rng.choice([[], ["WITHDIST"], ["WITHCOORD", "WITHHASH", "WITHDIST"]])
        pair.same("GEORADIUS", "pts", lon, lat, radius_m, unit, *withs, *extra)
        pair.same("GEORADIUS_RO", "pts", lon, lat, radius_m, unit, *extra, *withs)
        member = f"m{rng.randrange(400)}"
        pair.same("GEORADIUSBYMEMBER", "pts", member, radius_m, unit, *withs, *extra)
        pair.same("GEORADIUSBYMEMBER_RO", "pts", member, radius_m, unit, *withs)
        w, h = repr(rng.uniform(0, 3000)), repr(rng.uniform(0, 3000))
        pair.same("GEOSEARCH", "pts", "FROMLONLAT", lon, lat, "BYBOX", w, h, "km", *withs, *extra)
        pair.same("GEOSEARCH", "pts", "FROMMEMBER", member, "BYRADIUS", radius, unit, *withs)
        pair.same("GEOSEARCHSTORE", "dst", "pts", "FROMMEMBER", member, "BYBOX", w, h, "km")
        pair.same("ZRANGE", "dst", "0", "-1", "WITHSCORES")
        pair.same("GEOSEARCHSTORE", "dst", "pts", "FROMLONLAT", lon, lat, "BYRADIUS", radius,
                  unit, "STOREDIST", *extra)  # fmt: skip
        pair.same("ZRANGE", "dst", "0", "-1", "WITHSCORES")
        pair.same("GEORADIUS", "pts", lon, lat, radius, unit, "STORE", "dst2", *extra)
        pair.same("ZRANGE", "dst2", "0", "-1", "WITHSCORES")


def test_search_near_poles_and_antimeridian(pair, proto):
    rng = random.Random(4)
    pair.same("GEOADD", "p", *_points(rng, 300, 85.05))
    for lon, lat in (("179.9", "84"), ("-179.9", "-84"), ("0", "85.05"), ("180", "0"), ("0", "0")):
        for radius in ("100", "1000", "20000"):
            pair.same("GEORADIUS", "p", lon, lat, radius, "km", "WITHCOORD", "WITHDIST", "ASC")
            pair.same("GEOSEARCH", "p", "FROMLONLAT", lon, lat, "BYBOX", radius, radius, "km",
                      "WITHHASH", "DESC")  # fmt: skip


def test_count_any(pair):
    rng = random.Random(5)
    pair.same("GEOADD", "p", *_points(rng, 200, 20))
    run(
        pair,
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT 5 ANY",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT 5 ANY ASC",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT 500 ANY DESC",
        "GEORADIUS p 0 0 3000 km COUNT 3 ANY WITHDIST",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km ANY",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT 0",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT -1",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT x",
        "GEOSEARCH p FROMLONLAT 0 0 BYRADIUS 3000 km COUNT",
    )


def test_search_option_errors(pair):
    run(pair, ["GEOADD", "Sicily", *SICILY])
    run(
        pair,
        "GEORADIUS Sicily 15 37 200 km STORE",
        "GEORADIUS Sicily 15 37 200 km STORE d WITHDIST",
        "GEORADIUS Sicily 15 37 200 km WITHHASH STOREDIST d",
        "GEORADIUS_RO Sicily 15 37 200 km STORE d",
        "GEORADIUS Sicily 15 37 -1 km",
        "GEORADIUS Sicily 15 37 x km",
        "GEORADIUS Sicily 15 37 200 parsec",
        "GEORADIUS Sicily 200 37 200 km",
        "GEORADIUS Sicily 15 37 200 km BOGUS",
        "GEORADIUS Sicily 15 37 200 km FROMLONLAT 1 2",
        "GEORADIUSBYMEMBER Sicily nosuch 200 km",
        "GEORADIUSBYMEMBER Sicily Palermo x km",
        "GEORADIUSBYMEMBER nokey nosuch 200 km",
        "GEORADIUSBYMEMBER nokey nosuch x km BOGUS",
        "GEORADIUSBYMEMBER nokey nosuch 200 km STORE d",
        "GEOSEARCH Sicily FROMLONLAT 15 37",
        "GEOSEARCH Sicily BYRADIUS 200 km",
        "geosearch Sicily BYRADIUS 200 km WITHDIST",
        "GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 15 37 BYRADIUS 1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 km BYBOX 1 1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 -1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX x 1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 x km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 1 parsec",
        "GEOSEARCH Sicily FROMMEMBER nosuch BYBOX 1 1 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 1",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 km STORE d",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 km STOREDIST",
        "GEOSEARCH nokey FROMMEMBER nosuch BYRADIUS 1 km",
        "GEOSEARCH nokey FROMMEMBER nosuch BYRADIUS x km",
        "GEOSEARCH nokey FROMMEMBER nosuch",
        "GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
        "GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x",
        "GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
        "ZRANGE d 0 -1 WITHSCORES",
        "GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 1 km",
        "EXISTS d",
        "SET d x",
        "GEOSEARCHSTORE d nokey FROMLONLAT 15 37 BYRADIUS 1 km",
        "EXISTS d",
        "SET d x",
        "GEORADIUS nokey 15 37 1 km STORE d",
        "EXISTS d",
        "GEORADIUS nokey 15 37 1 km",
        "GEORADIUS Sicily 0 0 1 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY",
    )


def test_store_events_and_types(pair, events):
    run(
        pair,
        ["GEOADD", "Sicily", *SICILY],
        "GEORADIUS Sicily 15 37 200 km STORE d1",
        "GEORADIUS Sicily 15 37 200 km STOREDIST d2",
        "GEOSEARCHSTORE d3 Sicily FROMLONLAT 15 37 BYRADIUS 200 km",
        "GEOSEARCHSTORE d3 Sicily FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOADD Sicily XX 13 38 Palermo",
        "OBJECT ENCODING d1",
        "TYPE d2",
    )
    events.assert_same()


def test_many_members_skiplist(pair, proto):
    rng = random.Random(8)
    pair.same("GEOADD", "big", *_points(rng, 1000, 60))
    run(
        pair,
        "GEOSEARCHSTORE s big FROMLONLAT 0 0 BYBOX 20000 20000 km",
        "OBJECT ENCODING s",
        "GEOSEARCH big FROMLONLAT 10 10 BYRADIUS 3000 km WITHDIST WITHCOORD COUNT 10",
        "GEORADIUSBYMEMBER big m7 4000 km WITHHASH DESC",
    )


def test_command_metadata(pair):
    names = ["geoadd", "geopos", "geodist", "geohash", "georadius", "georadius_ro",
             "georadiusbymember", "georadiusbymember_ro", "geosearch", "geosearchstore"]  # fmt: skip
    for name in names:
        pair.same("COMMAND", "INFO", name)
    for args in (
        ["GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d"],
        ["GEORADIUS", "k", "0", "0", "1", "km", "STOREDIST", "d", "STORE", "e"],
        ["GEORADIUS", "k", "0", "0", "1", "km"],
        ["GEORADIUSBYMEMBER", "k", "m", "1", "km", "STORE", "d"],
        ["GEOSEARCHSTORE", "d", "k", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
    ):
        pair.same("COMMAND", "GETKEYS", *args)
        pair.same("COMMAND", "GETKEYSANDFLAGS", *args)


def test_geo_inside_scripts(pair):
    run(pair, ["GEOADD", "Sicily", *SICILY])
    script = "return redis.call('GEOPOS', KEYS[1], 'Palermo')"
    pair.same("EVAL", script, "1", "Sicily")
    pair.call("HELLO", "3")
    pair.same("EVAL", "redis.setresp(3); " + script, "1", "Sicily")


def test_count_orders_equal_distances_as_redis(pair, proto):
    """COUNT below the number of matches: Redis's partial quicksort, whose order of points
    at equal distances is not the input's."""
    args = []
    for i in range(60):
        args += ["2.0", "3.0", f"same{i}"]
    rng = random.Random(12)
    for i in range(60):
        args += [repr(2 + rng.uniform(-0.5, 0.5)), repr(3 + rng.uniform(-0.5, 0.5)), f"r{i}"]
    pair.same("GEOADD", "eq", *args)
    for count in ("1", "7", "40", "61", "100", "119", "120", "500"):
        for order in ("ASC", "DESC"):
            pair.same("GEORADIUS", "eq", "2", "3", "200", "km", "COUNT", count, order)
            pair.same("GEOSEARCH", "eq", "FROMMEMBER", "r3", "BYBOX", "300", "300", "km",
                      "COUNT", count, order, "WITHDIST")  # fmt: skip
    pair.same("GEORADIUS", "eq", "2", "3", "200", "km", "COUNT", "5")


def test_command_docs_summary_and_group(store_port, redis_port):
    """COMMAND DOCS of the GEO and HyperLogLog commands: Redis's summary and group."""
    names = ["geoadd", "geopos", "geodist", "geohash", "georadius", "georadius_ro",
             "georadiusbymember", "georadiusbymember_ro", "geosearch", "geosearchstore",
             "pfadd", "pfcount", "pfmerge", "pfdebug", "pfselftest"]  # fmt: skip
    docs = []
    for port in (store_port, redis_port):
        conn = redis.Connection(port=port, protocol=2)
        conn.connect()
        conn.send_command("COMMAND", "DOCS", *names)
        reply = conn.read_response()
        conn.disconnect()
        flat = dict(zip(reply[::2], reply[1::2], strict=True))
        docs.append({
            name: {k: v for k, v in zip(entry[::2], entry[1::2], strict=True)
                   if k in (b"summary", b"group")}
            for name, entry in flat.items()
        })  # fmt: skip
    assert docs[0] == docs[1]
    assert len(docs[0]) == len(names)
