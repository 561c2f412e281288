"""What the fuzzers share (issue 15): one entry point, seeded and deterministic, and one verdict.

Every fuzzer (``fuzz_static.py``, ``fuzz_import.py``, ``fuzz_case.py``) has

- ``run(cases, seed, **options) -> FuzzResult``: ``cases`` inputs drawn from ``random.Random(seed)``
  (the same seed gives the same inputs in the same order, whatever the machine's speed), each run with
  a wall-time limit and an address-space cap; ``tests/test_fuzz_subset.py`` calls it with a small
  ``cases``;
- a command line with ``--cases N --seed S`` (:func:`add_arguments`) that prints the outcome counts and
  exits 1 when any input was a finding (:meth:`FuzzResult.exit_status`).

A *finding* is any outcome in :data:`BAD`: a traceback (an exception that is not an ``AuditError``), a
message that is not one line, a hang, a crash or memory exhaustion of the child. Findings are grouped
by a signature (kind and innermost ``audit/`` frame) and the first inputs of each are kept under
``benchmarks/.cache/fuzz/`` for replay.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import select
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache" / "fuzz"

#: Outcome kinds that are findings (everything else is an accepted answer: ok, partial, error …).
BAD = frozenset({"internal", "message", "memory", "recursion", "exception", "table", "control", "json", "hang",
                 "crash", "harness", "traceback", "exit", "lost"})  # fmt: skip

#: What a one-line error looks like on stderr (docs/cli.md, "Exit status").
ERROR_PREFIX = "audit: error: "


@dataclasses.dataclass
class FuzzResult:
    """The outcome counts of one run and its findings by signature."""

    name: str
    seed: int
    cases: int = 0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    findings: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: dict[str, str] = dataclasses.field(default_factory=dict)
    """A message (traceback tail) per finding signature, for the summary."""
    slowest: float = 0.0
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        return sum(self.findings.values())

    def add(self, kind: str, where: str = "", msg: str = "", elapsed: float = 0.0) -> str | None:
        """Count one outcome; its signature if it is a finding."""
        self.cases += 1
        self.outcomes[kind] += 1
        self.slowest = max(self.slowest, elapsed)
        if kind not in BAD:
            return None
        sig = f"{kind}:{where}" if where else kind
        self.findings[sig] = self.findings.get(sig, 0) + 1
        self.examples.setdefault(sig, msg[-3000:])
        return sig

    def merge(self, other: FuzzResult) -> None:
        self.cases += other.cases
        self.outcomes.update(other.outcomes)
        for sig, n in other.findings.items():
            self.findings[sig] = self.findings.get(sig, 0) + n
            self.examples.setdefault(sig, other.examples.get(sig, ""))
        self.slowest = max(self.slowest, other.slowest)

    def summary(self) -> str:
        head = (f"{self.name}: {self.cases} cases (seed {self.seed}) in {self.seconds:.0f} s, "
                f"outcomes {dict(sorted(self.outcomes.items()))}, {self.bad} findings, slowest {self.slowest:.2f} s")  # fmt: skip
        lines = [head] + [f"  {n:5d}  {sig}" for sig, n in sorted(self.findings.items())]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "cases": self.cases, "seconds": round(self.seconds, 1),
                "outcomes": dict(self.outcomes), "findings": self.findings, "slowest": round(self.slowest, 3)}  # fmt: skip

    def exit_status(self) -> int:
        return 1 if self.findings else 0


def add_arguments(ap: argparse.ArgumentParser, cases: int) -> None:
    """The options every fuzzer takes: how many inputs and which sequence of them."""
    ap.add_argument("--cases", type=int, default=cases, help=f"number of inputs (default {cases})")
    ap.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed gives the same inputs (default 1)"
    )
    ap.add_argument("--json", dest="json_out", type=Path, help="also write the counts as JSON to this file")


def finish(result: FuzzResult, json_out: Path | None) -> int:
    """Print the summary (and the first message of each finding), write the JSON; the exit status."""
    print(result.summary(), flush=True)
    for sig, msg in sorted(result.examples.items()):
        print(f"--- {sig}\n{msg}")
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result.exit_status()


def keep(where: Path, sig: str, n: int, data: bytes, suffix: str, note: str) -> Path:
    """Keep the input of a finding (at most a few per signature) with a note beside it."""
    where.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.@-]+", "_", sig)[:80]
    out = where / f"{stem}.{n}{suffix}"
    out.write_bytes(data)
    out.with_name(out.name + ".txt").write_text(note + "\n")
    return out


def innermost_audit_frame(tb: traceback.StackSummary) -> str:
    for fr in reversed(tb):
        if "/audit/" in fr.filename:
            return f"{Path(fr.filename).name}:{fr.lineno}"
    return "?"


def exception_outcome(e: BaseException) -> dict[str, str]:
    """The outcome of an exception that is not an accepted error: kind, where, traceback."""
    where = innermost_audit_frame(traceback.extract_tb(e.__traceback__))
    kind = (
        "memory"
        if isinstance(e, MemoryError)
        else "recursion"
        if isinstance(e, RecursionError)
        else "exception"
    )
    name = "" if kind != "exception" else f"{type(e).__name__}@"
    return {"kind": kind, "where": name + where, "msg": "".join(traceback.format_exception(e))[-3000:]}


def cli_problem(code: int, stderr: str, ok_codes: tuple[int, ...] = (0, 1, 3, 4)) -> tuple[str, str] | None:
    """(kind, where) if a command's answer is not "success or one-line errors", else None.

    Accepted: an exit status of docs/cli.md (``ok_codes``), no traceback, and on exit 1 at least one
    line with the common prefix. Every ``audit: error:`` line is one line by construction; a Python
    exception's name at the start of a line is not accepted."""
    if "Traceback (most recent call last)" in stderr:
        last = [ln for ln in stderr.splitlines() if ln.strip()][-1:] or [""]
        return "traceback", last[0].split(":")[0][:60]
    if code not in ok_codes:
        return "exit", str(code)
    if code == 1 and not any(ln.startswith(ERROR_PREFIX) for ln in stderr.splitlines()):
        return "message", "exit 1 without an 'audit: error:' line"
    for ln in stderr.splitlines():
        if re.match(r"^[A-Z]\w*(Error|Exception):", ln):
            return "message", ln.split(":")[0][:60]
    return None


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


#: Wall time a child gets, as a multiple of its CPU-time limit, before it is asked how much CPU it
#: used: the machine these runs share is often loaded several times over, and a hang is judged by
#: the CPU a child burns (``RLIMIT_CPU``), not by its waits. A child whose process group used less
#: CPU than its limit gets more wall time, up to ``WALL_CAP`` times the limit (a child blocked on
#: nothing is a hang too).
WALL_FACTOR = 6.0
WALL_CAP = 30.0


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_forked(
    fn: Callable[[], dict[str, Any]], timeout: float, mem_mib: int
) -> tuple[dict[str, Any], float]:
    """Run ``fn`` in a forked child (its own process group) with an address-space cap of ``mem_mib``
    MiB above the parent's size, ``timeout`` seconds of CPU (``RLIMIT_CPU``) and ``WALL_FACTOR`` times
    that of wall time; its answer (a JSON-able dict with ``kind``) or a ``hang`` / ``crash`` /
    ``harness`` outcome, and the elapsed wall seconds."""
    rfd, wfd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            os.setpgid(0, 0)
            cap = _vm_size() + mem_mib * (1 << 20)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            used = resource.getrusage(resource.RUSAGE_SELF)
            cpu = int(used.ru_utime + used.ru_stime + timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            answer = fn()
        except BaseException as e:  # noqa: BLE001 - the harness reports, never raises
            answer = {"kind": "harness", "where": type(e).__name__, "msg": traceback.format_exc()[-2000:]}
            code = 1
        try:
            os.write(wfd, json.dumps(answer).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = start + timeout * WALL_FACTOR
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            starved = group_cpu_seconds(pid) < timeout and time.monotonic() - start < timeout * WALL_CAP
            if starved:  # waiting for a CPU on a loaded machine, not spinning: give it more time
                deadline += timeout
                continue
            timed_out = True
            break
        ready, _, _ = select.select([rfd], [], [], left)
        if ready:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(rfd)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - start
    if timed_out:
        return {"kind": "hang", "where": "timeout", "msg": f"no answer in {elapsed:.0f} s"}, elapsed
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL) and not chunks:
        return {"kind": "hang", "where": "cpu", "msg": f"more than {timeout:g} s of CPU"}, elapsed
    if os.WIFSIGNALED(status):
        return {"kind": "crash", "where": f"signal {os.WTERMSIG(status)}", "msg": ""}, elapsed
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        return {"kind": "crash", "where": "no answer", "msg": f"exit status {status}"}, elapsed
    assert isinstance(answer, dict)
    return answer, elapsed
