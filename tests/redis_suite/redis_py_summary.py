"""Summarises a redis-py test run (junit XML): totals and failures by command family.

Usage: redis_py_summary.py JUNIT.xml TITLE [BASELINE_JUNIT.xml]
"""

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter

# First match wins; a test's family comes from its name.
FAMILIES = [
    ("ACL", r"acl"),
    ("GEO", r"geo"),
    ("SORT", r"(^|_)sort(_|$|\[)|sort_ro"),
    (
        "streams",
        r"(^|_)x(add|ack|autoclaim|claim|del|group|info|len|pending|range|read|readgroup|revrange|trim)|stream",
    ),
    ("HyperLogLog", r"(^|_)pf(add|count|merge)"),
    ("sharded pub/sub", r"ssubscribe|sunsubscribe|spublish|shard"),
    ("DUMP/RESTORE", r"dump|restore"),
    ("MONITOR", r"monitor"),
    ("CLIENT PAUSE", r"client_(un)?pause"),
    ("SLOWLOG", r"slowlog"),
    ("MODULE", r"module"),
]


def family(name: str, message: str = "") -> str:
    """A failed test's command family: the command its error says is unknown, else its name."""
    unknown = re.search(r"unknown command '([^']+)'", message)
    base = (unknown.group(1) if unknown else name.split("[", 1)[0]).lower()
    for label, pattern in FAMILIES:
        if re.search(pattern, base):
            return label
    return "other"


def outcomes(path: str) -> dict[str, tuple[str, str]]:
    """Each test's worst outcome over its phases (setup, call, teardown) and first message."""
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    result: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{cls}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (
                    (child.get("message") or "").splitlines()[0][:110]
                    if child.get("message")
                    else ""
                )
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        if name not in result or rank[outcome] > rank[result[name][0]]:
            result[name] = (outcome, message)
    return result


def main(path: str, title: str, baseline: str | None) -> None:
    tests = outcomes(path)
    base = outcomes(baseline) if baseline else {}
    counts = Counter(outcome for outcome, _ in tests.values())
    failed = sorted(
        (family(name.split("::", 1)[1], message), name, message)
        for name, (outcome, message) in tests.items()
        if outcome == "failed"
    )
    print(f"## redis-py asyncio suite: {title}\n")
    print(
        f"{len(tests)} tests: passed {counts['passed']}, failed {counts['failed']} "
        f"(in any phase: setup, call or teardown), skipped {counts['skipped']}\n"
    )
    if failed:
        by_family = Counter(f for f, _, _ in failed)
        also = Counter(f for f, name, _ in failed if base.get(name, ("",))[0] == "failed")
        header = "| family | failed |" + (" of which also fail on the baseline |" if base else "")
        print(header + "\n|---|---|" + ("---|" if base else ""))
        for label, _ in FAMILIES + [("other", "")]:
            if by_family[label]:
                print(f"| {label} | {by_family[label]} |" + (f" {also[label]} |" if base else ""))
        print("\nFailures:\n")
        for fam, name, message in failed:
            mark = " (fails on the baseline too)" if base.get(name, ("",))[0] == "failed" else ""
            print(f"- [{fam}] {name}{mark}: {message}")


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2] if len(sys.argv) > 2 else "",
        sys.argv[3] if len(sys.argv) > 3 else None,
    )
