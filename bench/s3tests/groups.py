"""Sort ceph/s3-tests functional tests into the groups docs/s3-compatibility.md reports, and
tally a JUnit XML run per group and per cause of failure.

Standard library only: bench/s3tests/run.sh runs it with the suite's own Python.

    groups.py select [--groups listing,copy] < names   # test names in, the chosen ones out
    groups.py tally junit.xml [--markdown]              # counts per group, failures per cause
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# First match wins, so the order matters: features we do not claim come first (an ACL test is
# "unclaimed" even when it also copies), then the narrow groups, then the broad ones.
RULES: list[tuple[str, str]] = [
    ("unclaimed", r"object_lock|post_object|acl|public_block|block_public|policy|torrent"),
    ("unclaimed", r"object_attributes|ignore_public|expected_bucket_owner|^test_access_bucket"),
    ("checksum", r"checksum|cksum"),
    ("conditional", r"if_?match|if_?none_?match|if_?modified|if_?unmodified"),
    ("cors", r"cors"),
    ("presigned", r"presigned|x_amz_expires|authenticated_expired"),
    ("versioning", r"^test_versio|delete_marker|versioned|_versioning"),
    ("multipart", r"multipart|upload_part"),
    ("range", r"^test_ranged"),
    ("copy", r"copy"),
    ("listing", r"list|key_count|maxkeys|marker|fetchowner|continuationtoken|startafter"),
    ("metadata", r"metadata|cache_control|_expires|content_encoding|response_headers"),
    ("object", r"."),
]
GROUPS: list[str] = list(dict.fromkeys(name for name, _ in RULES))
_COMPILED = [(name, re.compile(pattern)) for name, pattern in RULES]


def group_of(test_name: str) -> str:
    """The group of a test, by its function name (a parametrized suffix is ignored)."""
    name = test_name.split("[", 1)[0].rsplit("::", 1)[-1]
    for group, pattern in _COMPILED:
        if pattern.search(name):
            return group
    raise AssertionError("the last rule matches every name")


def select(names: Iterable[str], groups: set[str] | None) -> list[str]:
    unknown = (groups or set()) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown group(s) {sorted(unknown)}; groups are {GROUPS}")
    return [n for n in names if n.strip() and (groups is None or group_of(n) in groups)]


@dataclass
class Result:
    name: str
    group: str
    outcome: str  # passed, failed, error, skipped
    cause: str  # first line of the failure or error message; "" when passed
    aborted_uploads: int = 0  # multipart uploads the runner aborted after the test


_BUCKET = re.compile(r"s3t-[a-z0-9]+-\d+")
_HEX = re.compile(r"\b[0-9a-f]{16,}\b")


def _cause(element: ET.Element) -> str:
    text = element.get("message") or (element.text or "")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "(no message)")
    first = _HEX.sub("<hex>", _BUCKET.sub("<bucket>", first))
    return first[:200]


_RANK = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}


def parse_junit(path: str) -> list[Result]:
    """One result per test: pytest writes a second <testcase> when a failed test's teardown also
    errs; the worse outcome (a failure over an error) and its cause are kept."""
    by_name: dict[str, Result] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, cause = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag == "failure" else tag
                cause = _cause(found)
                break
        aborted = sum(
            int(p.get("value") or 0)
            for p in case.iter("property")
            if p.get("name") == "aborted_uploads"
        )
        result = Result(name, group_of(name), outcome, cause, aborted)
        seen = by_name.get(name)
        if seen is None:
            by_name[name] = result
        else:
            seen.aborted_uploads = max(seen.aborted_uploads, aborted)
            if _RANK[outcome] > _RANK[seen.outcome]:
                seen.outcome, seen.cause = outcome, cause
    return list(by_name.values())


def tally(results: list[Result]) -> dict[str, Counter[str]]:
    per_group: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    for r in results:
        per_group[r.group][r.outcome] += 1
    return per_group


def causes(results: list[Result]) -> list[tuple[str, list[Result]]]:
    """Failures and errors grouped by their first line, the cause breaking most tests first."""
    by_cause: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if r.outcome in ("failed", "error"):
            by_cause[r.cause].append(r)
    return sorted(by_cause.items(), key=lambda item: (-len(item[1]), item[0]))


def render(results: list[Result], markdown: bool) -> str:
    per_group = tally(results)
    cols = ("passed", "failed", "error", "skipped")
    lines: list[str] = []
    if markdown:
        lines += [
            "| group | passed | failed | error | skipped | run |",
            "|---|---|---|---|---|---|",
        ]
    else:
        lines.append(f"{'group':<12}" + "".join(f"{c:>9}" for c in (*cols, "run")))
    total: Counter[str] = Counter()
    for group in [*GROUPS, "TOTAL"]:
        counts = total if group == "TOTAL" else per_group[group]
        if group != "TOTAL":
            total.update(counts)
        row = [counts[c] for c in cols] + [sum(counts.values())]
        if group != "TOTAL" and row[-1] == 0:
            continue
        if markdown:
            lines.append(f"| {group} | " + " | ".join(str(v) for v in row) + " |")
        else:
            lines.append(f"{group:<12}" + "".join(f"{v:>9}" for v in row))
    lines.append("")
    lines.append("Failures and errors by cause (most tests first):")
    for cause, hit in causes(results):
        names = ", ".join(f"{r.name} ({r.group})" for r in hit[:3])
        more = f", +{len(hit) - 3} more" if len(hit) > 3 else ""
        bullet = "- " if markdown else "  "
        lines.append(f"{bullet}{len(hit)} x `{cause}`: {names}{more}")
    left_open = [r for r in results if r.aborted_uploads]
    if left_open:
        names = ", ".join(r.name for r in left_open[:5])
        more = f", +{len(left_open) - 5} more" if len(left_open) > 5 else ""
        lines += [
            "",
            f"{len(left_open)} tests left multipart uploads open; the runner aborted them so "
            f"their buckets could be deleted: {names}{more}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sel = sub.add_parser("select", help="read test names on stdin, print those in --groups")
    sel.add_argument("--groups", default="", help=f"comma-separated, of {','.join(GROUPS)}")
    tal = sub.add_parser("tally", help="counts per group from a JUnit XML file")
    tal.add_argument("junit")
    tal.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "select":
        wanted = {g.strip() for g in args.groups.split(",") if g.strip()} or None
        try:
            chosen = select(sys.stdin.read().splitlines(), wanted)
        except ValueError as e:
            print(f"groups.py: {e}", file=sys.stderr)
            return 2
        print("\n".join(n.strip() for n in chosen))
        return 0
    print(render(parse_junit(args.junit), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
