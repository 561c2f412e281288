"""A bounded, seeded subset of the three fuzzers (issue 15): the same entry point as the long runs
(``run(cases, seed)``, benchmarks/fuzz_common.py), a few dozen inputs each, every one of them
answered (no traceback, no hang, no crash, no one-line rule broken, no good live flow lost).
The long runs and their counts: docs/reliability.md."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from benchmarks import fuzz_case, fuzz_import, fuzz_static
from benchmarks.fuzz_common import BAD, FuzzResult, cli_problem

pytestmark = pytest.mark.slow  # processes: forked scans and commands, import workers

SEED = 15


def _clean(result: FuzzResult, cases: int) -> None:
    assert result.cases == cases, result.summary()
    assert result.findings == {}, result.summary() + "\n" + "\n".join(result.examples.values())
    assert not (set(result.outcomes) & BAD)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the zip mutations duplicate entries on purpose
def test_static_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_NO_FORK", "1")
    result = fuzz_static.run(40, SEED, targeted=0.4, timeout=30, quiet=True)
    _clean(result, 40)
    # the issue-15 targets were among them, and the scanner answered each (a result or one line)
    assert sum(n for k, n in result.outcomes.items() if k.startswith("target ") and k != "target random") >= 5
    assert (
        result.outcomes["ok"]
        + result.outcomes["partial"]
        + result.outcomes["error"]
        + result.outcomes["slow"]
        == 40
    )


def test_import_subset() -> None:
    result = fuzz_import.run(25, SEED, jobs=1, render=0.0, timeout=30, quiet=True)
    _clean(result, 25)
    for fmt in ("har", "pcap", "flows", "pii", "live"):
        assert (
            sum(
                n
                for k, n in result.outcomes.items()
                if k.startswith(f"{fmt} ") and k.endswith((" ok", " error"))
            )
            == 5
        )
    assert result.outcomes["live ok"] == 5  # every good flow stored beside the poisoned ones
    assert (
        result.outcomes["har rendered"] + result.outcomes["flows rendered"] + result.outcomes["pcap rendered"]
        >= 1
    )


def test_case_subset() -> None:
    cases = len(fuzz_case.DAMAGES)  # one of each damage, each with some command
    result = fuzz_case.run(cases, SEED, timeout=60, quiet=True)
    _clean(result, cases)
    # every case answered as docs/cli.md allows: damage said in one line, or tolerated (success)
    assert result.outcomes["error"] + result.outcomes["ok"] == cases and result.outcomes["error"] >= 1


def test_same_seed_same_inputs() -> None:
    """Determinism of the long runs: a seed names a sequence of inputs."""
    seed = fuzz_static.seeds(None)[0][1]
    assert fuzz_static.mutate(random.Random(7), "a.apk", seed) == fuzz_static.mutate(
        random.Random(7), "a.apk", seed
    )
    for fmt in ("har", "pcap", "live"):
        a = fuzz_import.TARGETS[fmt](random.Random(7), fuzz_import.corpus_for(fmt, random.Random(1)))
        b = fuzz_import.TARGETS[fmt](random.Random(7), fuzz_import.corpus_for(fmt, random.Random(1)))
        assert a == b


def test_case_damages_change_the_file(tmp_path: Path) -> None:
    """Each damage does what it says to a real case file (or the fuzzer would test nothing)."""
    base = fuzz_case.build_base(tmp_path)
    original = base.read_bytes()
    for i, (name, damage) in enumerate(fuzz_case.DAMAGES.items()):
        db = tmp_path / f"d{i}" / "case.sqlite"
        db.parent.mkdir()
        db.write_bytes(original)
        damage(random.Random(i), db)
        side = list(db.parent.glob("case.sqlite-*"))
        changed = not db.is_file() or db.read_bytes() != original or side or not db.stat().st_mode & 0o200
        assert changed, name
    c = sqlite3.connect(base)
    assert c.execute("SELECT count(*) FROM connections").fetchone()[0] > 10
    assert c.execute("SELECT count(*) FROM scans").fetchone()[0] == 1
    c.close()


def test_cli_verdict() -> None:
    assert cli_problem(0, "") is None and cli_problem(1, "audit: error: x: damaged case file (…)") is None
    assert cli_problem(1, "Traceback (most recent call last):\n  ...\nKeyError: 'path'") == (
        "traceback",
        "KeyError",
    )
    assert cli_problem(1, "something went wrong") == ("message", "exit 1 without an 'audit: error:' line")
    assert cli_problem(70, "") == ("exit", "70")
    assert cli_problem(0, "ValueError: x") == ("message", "ValueError")
