"""Summarises a tests/redis_suite/run.sh results directory as markdown.

usage: summarize.py RESULTS_DIR SERVER_NAME UNIT...   (exit status 1 if anything failed)
       summarize.py --failed RESULTS_DIR UNIT          (names of the unit's failed tests)

A failed test re-run alone (run.sh's isolated/ directory) that passes there is
reported as a cascade of an earlier failure. One that fails again keeps the
reason from the full run: alone, it may miss data that earlier tests set up.
"""

import collections
import pathlib
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECORD = re.compile(r"^\[(ok|err|ignore|skip|exception|TIMEOUT|budget|crash)\]: ?(.*)$")
UNKNOWN_CMD = re.compile(r"unknown command '([^']*)'", re.I)
UNKNOWN_SUB = re.compile(r"unknown subcommand '([^']*)'\. Try (\S+) HELP", re.I)


def records(text):
    """Yields (status, first line, continuation lines) for each runtest record."""
    current = None
    for raw in text.splitlines():
        line = ANSI.sub("", raw)
        if line.strip() == "The End":
            break
        match = RECORD.match(line)
        if match:
            if current:
                yield current
            current = (match.group(1), match.group(2), [])
        elif re.match(r"^\[(ready|\d+/\d+ done)\]|^Testing |^Cleanup|^Starting test server", line):
            if current:
                yield current
            current = None
        elif current:
            current[2].append(line)
    if current:
        yield current


def explain(status, first, rest):
    """The test name and a one-line reason for a failed record."""
    name = re.sub(r" in tests/\S+\.tcl$| \(\d+ ms\)$", "", first)
    if status == "err" and not re.search(r" in tests/\S+\.tcl$", first):
        # --durable error outside any test: the rest of the start_server block is lost.
        name, rest = "(rest of a start_server block aborted)", [first] + rest
    if status != "err" or not rest:
        return name, (first if status != "err" else "")
    stripped = [line.strip() for line in rest]
    if "while executing" in stripped:
        full = rest[1] if len(rest) > 1 else rest[0]
        quoted = [
            line
            for line in stripped
            if line.startswith('"') and not line.startswith(('"[srv', '"uplevel'))
        ]
        return name, f"error: {full}  <- {quoted[0] if quoted else '?'}"
    return name, rest[0]


# Replies that only make sense if an earlier test left the connection in MULTI,
# RESP3 or readraw mode: QUEUED, a raw RESP line, RESP3 pairs or doubles.
LEAKED_STATE = re.compile(
    r"(got|to be equal to|to equal or match) '(QUEUED|[*$:]-?\d+)'"
    r"|^Expected '[*$:]-?\d+' to be equal to"
    r"|\{\S+ -?\d+\.\d+\}|'-?\d+' to be equal to '-?\d+\.0'"
)


def signature(reason):
    match = UNKNOWN_SUB.search(reason)
    if match:
        return f"missing subcommand: {match.group(2).upper()} {match.group(1).upper()}"
    match = UNKNOWN_CMD.search(reason)
    if match:
        return f"missing command: {match.group(1).upper()}"
    if reason.startswith("error:"):
        return "error reply: " + re.sub(r"\s+<-.*", "", reason[7:])[:90]
    return "assertion"


def unit_results(out, unit, isolated=True):
    """Status per test name across attempts (latest wins), and extra notes."""
    safe = unit.replace("/", "_")
    status, notes, exceptions = collections.OrderedDict(), [], []
    for path in sorted(
        out.glob(f"{safe}.attempt*.txt"), key=lambda p: int(re.findall(r"\d+", p.name)[-1])
    ):
        seen = collections.Counter()
        for kind, first, rest in records(path.read_text(errors="replace")):
            if kind in ("ok", "err", "ignore", "skip"):
                name, reason = explain(kind, first, rest)
                seen[name] += 1
                status[(name, seen[name])] = (kind, reason)
            elif kind == "exception":
                exceptions.append(
                    first + " | " + " / ".join(line.strip() for line in rest[:8] if line.strip())
                )
            elif kind in ("budget",):
                notes.append(f"{kind}: {first}")
    hung_file = out / f"{safe}.hung"
    if hung_file.exists():
        for line in hung_file.read_text().splitlines():
            if line.startswith("["):
                notes.append(line)
            elif line:
                status[(line, 1)] = ("hang", "no reply: test stalled, skipped on retry")
    alone = isolated_results(out, unit) if isolated else {}
    for key, (kind, reason) in status.items():
        if kind == "err" and key[0] in alone:
            status[key] = alone[key[0]]
        elif (
            kind == "err"
            and isolated
            and LEAKED_STATE.search(reason)
            and not (UNKNOWN_CMD.search(reason) or UNKNOWN_SUB.search(reason))
        ):
            status[key] = (
                "cascade?",
                "reply shows client state left by an earlier failure: " + reason,
            )
    return status, notes, exceptions


def isolated_results(out, unit):
    """{test name: ("cascade", reason)} for failed tests that pass when re-run alone."""
    results = {}
    for name_file in (out / "isolated" / unit.replace("/", "_")).glob("*.name"):
        name = name_file.read_text().rstrip("\n")
        txt = name_file.with_suffix(".txt")
        if not txt.exists():
            continue
        kinds = [
            (k, explain(k, f, r))
            for k, f, r in records(txt.read_text(errors="replace"))
            if k in ("ok", "err")
        ]
        if any(k == "ok" and n == name for k, (n, _) in kinds) and not any(
            k == "err" and n == name for k, (n, _) in kinds
        ):
            results[name] = (
                "cascade",
                "passes when run alone: caused by an earlier failure in the unit",
            )
    return results


def failed_names(out, unit):
    status, _, _ = unit_results(pathlib.Path(out), unit, isolated=False)
    names = dict.fromkeys(n for (n, _), (k, _) in status.items() if k == "err")
    print("\n".join(names))


def main(out, server, units):
    out = pathlib.Path(out)
    total = collections.Counter()
    lines, by_sig = [], collections.defaultdict(list)
    table = [
        "| unit | passed | failed | hung | exceptions | cascade (passes alone) "
        "| cascade? (leaked client state) | ignored (tags) | skipped (skip.txt) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for unit in units:
        status, notes, exceptions = unit_results(out, unit)
        count = collections.Counter(kind for kind, _ in status.values())
        total.update(count)
        total["exception"] += len(exceptions)
        table.append(
            f"| {unit} | {count['ok']} | {count['err']} | {count['hang']} | "
            f"{len(exceptions)} | {count['cascade']} | {count['cascade?']} | {count['ignore']} | {count['skip']} |"
        )
        failed = [
            (n, k, r)
            for (n, _), (k, r) in status.items()
            if k in ("err", "hang", "cascade", "cascade?")
        ]
        if not (failed or notes or exceptions):
            continue
        lines.append(f"\n### {unit}\n")
        for note in notes:
            lines.append(f"- **{note}**")
        for exc in exceptions:
            lines.append(f"- **exception (unit aborted)**: {exc[:400]}")
            by_sig[signature("error: " + exc)].append(f"{unit}: (unit aborted)")
        for name, kind, reason in failed:
            lines.append(f"- [{kind}] {name} — {reason[:300]}")
            by_sig[signature(reason) if kind == "err" else kind].append(f"{unit}: {name}")
    print(f"## Redis 7.0 test suite (external mode) against: {server}\n")
    print("\n".join(table))
    print(
        f"\n**total: {total['ok']} passed, {total['err']} failed, {total['hang']} hung, "
        f"{total['exception']} exceptions, {total['cascade']} failed only after an earlier "
        f"failure, {total['cascade?']} more probably so, {total['ignore']} ignored by tags, {total['skip']} skipped by skip.txt**"
    )
    if by_sig:
        print("\n## Failures grouped by cause signature\n")
        for sig, tests in sorted(
            by_sig.items(), key=lambda kv: (kv[0] == "assertion", -len(kv[1]))
        ):
            print(f"- {sig}: {len(tests)} tests")
    print("\n## Failures per unit (first failing assertion)")
    print("\n".join(lines) if lines else "\nnone")
    return 1 if any(total[k] for k in ("err", "hang", "exception", "cascade", "cascade?")) else 0


if __name__ == "__main__":
    if sys.argv[1] == "--failed":
        failed_names(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
