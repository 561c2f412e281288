"""A big HAR read in a forked child (issue 15): the same case file as reading it here, faults isolated.

Every test forces the child for small files (``READER_MIN_BYTES`` 0) and compares with the import in
this process: every table of the case file, the summary, the warnings, or the same error.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from audit import forking
from audit.errors import ImportFormatError
from audit.models import Connection, DataFinding, DnsRecord, HttpRequestData
from audit.store import Store
from audit.traffic.importers import har, import_file, reader_process
from audit.traffic.pii import PiiDetector
from audit.traffic.profile import load_profile
from benchmarks import fuzz_import
from tests.conftest import FIXTURES
from tests.helpers.traffic import entry, write_har

CAPTURES = FIXTURES / "captures"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or (os.cpu_count() or 1) < 2, reason="needs fork and 2 CPUs"
)


@pytest.fixture(autouse=True)
def _threads_of_other_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Idle threads earlier tests of the suite left behind would keep the reading in this process (no
    # fork beside other threads): counted as none here, except where a test starts its own.
    if "another thread" not in request.node.name:
        monkeypatch.setattr(forking, "threading", types.SimpleNamespace(active_count=lambda: 1))


def tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (``inputs.added_at`` left out: the time of the import)."""
    c = sqlite3.connect(db)
    names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    c.text_factory = bytes  # text as stored, byte for byte
    out = {}
    for name in names:
        cols = [r[1].decode() for r in c.execute(f"PRAGMA table_info({name})")]
        picked = ", ".join("NULL" if (name == "inputs" and col == "added_at") else col for col in cols)
        out[name] = c.execute(f"SELECT {picked} FROM {name} ORDER BY rowid").fetchall()
    c.close()
    return out


def outcome(
    path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, *, child: bool, detector: PiiDetector | None = None
) -> tuple[Any, ...]:
    """Import ``path`` into a case that already holds the demo HAR: the summary and every table, or
    the error (and the tables, which must be those of the earlier import)."""
    monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0 if child else 1 << 62)
    with Store(db) as store:
        import_file(CAPTURES / "messenger.har", store, app="earlier")
        try:
            s = import_file(path, store, app="app", detector=detector or PiiDetector(None))
            result: tuple[Any, ...] = ("ok", s.connections, s.dns, s.errors)
        except ImportFormatError as e:
            result = ("error", str(e))
    return result, tables(db)


def apps(rows: dict[str, list[tuple[Any, ...]]]) -> set[bytes]:
    return {r[3] for r in rows["connections"]}  # id, ts, end_ts, app


def forked(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many processes the import of ``path`` forks, with the reader threshold at 0."""
    monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0)
    forks = []
    fork = os.fork

    def counted() -> int:
        forks.append(1)
        return fork()

    monkeypatch.setattr(os, "fork", counted)
    import_file(path, Store(), detector=PiiDetector(None))
    monkeypatch.setattr(os, "fork", fork)
    return len(forks)


def same_either_way(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> tuple[Any, ...]:
    here = outcome(path, tmp_path / f"{path.stem}-here.sqlite", monkeypatch, child=False, **kw)
    there = outcome(path, tmp_path / f"{path.stem}-child.sqlite", monkeypatch, child=True, **kw)
    assert there[0] == here[0]
    assert there[1] == here[1]  # every table, row by row
    return here


@pytest.mark.parametrize("name", ["messenger.har", "hostile.har"])
def test_fixture_hars_give_the_same_case(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, rows = same_either_way(CAPTURES / name, tmp_path, monkeypatch)
    assert result[0] == "ok" and result[1] > 0 and len(rows["connections"]) > result[1]
    assert forked(CAPTURES / name, monkeypatch) == 1


def test_findings_with_a_device_profile_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    detector = PiiDetector(load_profile(CAPTURES / "device.toml"))
    result, rows = same_either_way(CAPTURES / "messenger.har", tmp_path, monkeypatch, detector=detector)
    assert rows["findings"]


@pytest.mark.parametrize("behind", ["never", "always", "every other batch"])
def test_findings_are_the_same_whichever_process_detects(
    behind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child detects a batch itself when this process is behind (the pipe half full): forced here.
    calls = []

    def backlog(fd: int) -> int:
        calls.append(1)
        return {"never": 0, "always": 1 << 40}.get(behind, (1 << 40) * (len(calls) % 2))

    monkeypatch.setattr(reader_process, "_backlog", backlog)
    monkeypatch.setattr(reader_process, "BATCH", 100)
    aaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    entries = [entry(f"https://t.example/{i}?adid={aaid if i % 3 == 0 else 'none'}") for i in range(1234)]
    path = write_har(tmp_path / "d.har", entries)
    log = tmp_path / "pids"

    class Logged(PiiDetector):
        def scan(self, request: HttpRequestData) -> tuple[DataFinding, ...]:
            with log.open("a") as f:
                f.write(f"{os.getpid()}\n")
            return super().scan(request)

    detector = Logged(load_profile(CAPTURES / "device.toml"))
    result, rows = same_either_way(path, tmp_path, monkeypatch, detector=detector)
    assert result[1] == 1234 and len(rows["findings"]) >= 412
    pids = log.read_text().split()
    assert len(pids) == 2 * 1234  # here, then with a child
    here = str(os.getpid())
    in_child = sum(p != here for p in pids)
    assert in_child == {"never": 0, "always": 1234}.get(behind, 7 * 100 - 66), in_child  # batches 1, 3 … 13
    result, rows = same_either_way(CAPTURES / "messenger.har", tmp_path, monkeypatch, detector=detector)
    assert rows["findings"]


def test_warnings_and_left_out_entries_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [entry(f"https://h{i}.example.net/p\ud800?a={i}") for i in range(1200)]  # lone surrogates
    entries[3]["request"]["url"] = {"name": 5}  # skipped with a warning
    entries[5]["startedDateTime"] = "1970-01-01T00:00:00Z"  # kept, flagged
    entries[7]["serverIPAddress"] = "9" * 5000  # left out
    entries[9]["connection"] = "203.0.113.7:70000"
    entries[11]["time"] = float("nan")
    entries[1100]["request"]["url"] = [1]
    path = write_har(tmp_path / "odd.har", entries)
    result, _ = same_either_way(path, tmp_path, monkeypatch)
    assert result[0] == "ok" and result[1] == 1198
    assert any("request.url is an object" in e for e in result[3])
    assert any("log.entries[1100]" in e for e in result[3])  # after the first batches
    assert any("not an IP address" in e for e in result[3])


@pytest.mark.parametrize("where", [0, 700, 1499])
def test_a_malformed_entry_is_the_same_error_and_nothing_is_kept(
    where: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [entry(f"https://h{i}.example.net/x?a={i}") for i in range(1500)]
    del entries[where]["request"]
    path = write_har(tmp_path / "bad.har", entries)
    (result, rows) = same_either_way(path, tmp_path, monkeypatch)
    assert result == ("error", f"{path}: log.entries[{where}] is malformed (missing 'request')")
    assert rows["connections"] and apps(rows) == {b"earlier"}  # the earlier import intact, nothing else


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"log": {"entries": [' + ", ".join(['{"request": 1}'] * 3) + "]", "is malformed"),
        ('{"log": {"entries": [' + json.dumps(entry()) + ', {"a": tru}]}}', "invalid JSON at line 1 column"),
        ('{"log": {"entries": 5}}', "no log.entries list"),
        ('{"log": {"entries": [' + "[" * 100_000 + "]" * 100_000 + "]}}", "nested too deeply"),
    ],
)
def test_damaged_json_is_the_same_error(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "damaged.har"
    path.write_text(text)
    result, _ = same_either_way(path, tmp_path, monkeypatch)
    assert result[0] == "error" and message in result[1]


def test_not_utf8_is_the_same_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_har(tmp_path / "latin.har", [entry() for _ in range(600)])
    path.write_bytes(path.read_bytes().replace(b"api.example", b"api.\xe9xample", 700))
    result, _ = same_either_way(path, tmp_path, monkeypatch)
    assert result[0] == "error" and "HAR is not UTF-8 text" in result[1]


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_hars_give_the_same_case(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    corpus = fuzz_import.corpus_for("har", random.Random(seed))
    data = (fuzz_import.har_issue15 if seed % 2 else fuzz_import.gen_har)(rng, corpus)
    path = tmp_path / f"fuzz{seed}.har"
    path.write_bytes(data)
    same_either_way(path, tmp_path, monkeypatch)


def test_records_travel_unchanged() -> None:
    finding = DataFinding("aaid", "query:adid", "plain", "pattern", "38••••0d")
    request = HttpRequestData("https://h/\ud800", (("a", "b\udcff"),), b"\x00\xff", True)
    records = [
        Connection(ts=1.5, source="har", protocol="https", host="h", port=443, query_keys=("a",),
                   findings=(finding,), request=request, end_ts=float("inf"), bytes_in=2**70),
        Connection(ts=2.0, source="pcap", protocol="udp"),
        DnsRecord(ts=3.0, source="pcap", name="h", answers=("203.0.113.1",)),
    ]  # fmt: skip
    for kind, data in (reader_process._batch([reader_process._pack(r) for r in records]),):
        assert kind == b"R"
        import marshal

        back = [reader_process._unpack(p) for p in marshal.loads(data)]
        assert back == records
        assert [getattr(r, "request", None) for r in back] == [request, None, None]


def test_a_record_marshal_cannot_write_goes_pickled() -> None:
    odd = Connection(ts=1.0, source="x", protocol="tcp", ip=Path("203.0.113.1"))  # type: ignore[arg-type]
    kind, data = reader_process._batch([reader_process._pack(odd)])
    assert kind == b"P"
    import pickle

    assert [reader_process._unpack(p) for p in pickle.loads(data)] == [odd]


def _big_har(tmp_path: Path, n: int = 3000) -> Path:
    return write_har(tmp_path / "big.har", [entry(f"https://h{i}.example.net/x?a={i}") for i in range(n)])


def _children() -> set[int]:
    """Our child processes that are still there (zombies included)."""
    return set(_descendants(os.getpid()))


def test_a_killed_reader_is_one_error_and_the_case_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _big_har(tmp_path)
    convert = har.entry_to_connection
    parent = os.getpid()

    def dies(e: dict[str, Any], **kw: Any) -> Any:
        if os.getpid() != parent and e["request"]["url"].startswith("https://h2000."):
            os.kill(os.getpid(), signal.SIGKILL)
        return convert(e, **kw)

    monkeypatch.setattr(har, "entry_to_connection", dies)
    monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0)
    before = _children()
    with Store(tmp_path / "case.sqlite") as store:
        import_file(CAPTURES / "messenger.har", store, app="earlier")
        n = store.connection_count()
        with pytest.raises(ImportFormatError) as e:
            import_file(path, store, detector=PiiDetector(None))
        assert str(e.value) == (
            f"{path}: the process reading the file stopped before its end (killed by SIGKILL); "
            "nothing of the file was imported"
        )
        assert store.connection_count() == n and len(store.inputs()) == 1
    assert _children() == before


@pytest.mark.parametrize("stop", [KeyboardInterrupt, sqlite3.OperationalError])
def test_stopping_here_stops_the_reader_and_rolls_back(
    stop: type[BaseException], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C (or a write that fails) while the child reads on: the child goes, nothing is kept
    path = _big_har(tmp_path)
    monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0)
    seen = []

    class Stopping(PiiDetector):
        def scan(self, request: HttpRequestData) -> tuple[DataFinding, ...]:
            seen.append(1)
            if len(seen) == 1200:
                raise stop("stop")
            return super().scan(request)

    before = _children()
    with Store(tmp_path / "case.sqlite") as store:
        with pytest.raises(stop):
            import_file(path, store, detector=Stopping(None))
        assert store.connection_count() == 0 and store.inputs() == []
    assert _children() == before


def test_an_exception_that_does_not_pickle_keeps_its_type_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Odd(Exception):
        def __reduce__(self) -> Any:
            raise TypeError("no")

    def fails(e: dict[str, Any], **kw: Any) -> Any:
        raise Odd("a bug")

    monkeypatch.setattr(har, "entry_to_connection", fails)
    monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0)
    with pytest.raises(RuntimeError, match="^Odd: a bug$"):
        import_file(_big_har(tmp_path, 10), Store())


@pytest.mark.parametrize("why", ["small file", "AUDIT_NO_FORK", "another thread"])
def test_read_here_for_a_small_file_in_batch_or_beside_threads(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError(f"forked despite {why}")

    monkeypatch.setattr(os, "fork", no_fork)
    if why != "small file":
        monkeypatch.setattr("audit.traffic.importers.READER_MIN_BYTES", 0)
    if why == "AUDIT_NO_FORK":
        monkeypatch.setenv("AUDIT_NO_FORK", "1")
    stop = threading.Event()
    if why == "another thread":
        threading.Thread(target=stop.wait, daemon=True).start()
    try:
        s = import_file(_big_har(tmp_path, 10), Store(), detector=PiiDetector(None))
    finally:
        stop.set()
    assert s.connections == 10


@pytest.mark.slow
@pytest.mark.parametrize("how", ["Ctrl-C", "kill -9 of the import"])
def test_a_big_import_stopped_leaves_the_case_as_it_was(how: str, tmp_path: Path) -> None:
    # A real `audit import` of a HAR above READER_MIN_BYTES, stopped while its child reads: Ctrl-C
    # (one line, exit 1) or SIGKILL of the import itself (its child goes on its next write).
    path = tmp_path / "big.har"
    one = json.dumps(entry("https://h.example.net/x?a=1"))
    with path.open("w") as f:
        f.write('{"log": {"entries": [')
        f.write(",\n".join([one] * (reader_process.READER_MIN_BYTES // len(one) + 20_000)))
        f.write("]}}")
    db = tmp_path / "case.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "audit", "import", str(CAPTURES / "messenger.har"), "--db", str(db)],
                   check=True, env=env, capture_output=True)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "audit", "import", str(path), "--db", str(db)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _descendants(proc.pid):
        time.sleep(0.05)
    assert _descendants(proc.pid), "no reader process started"
    time.sleep(0.5)
    if how == "Ctrl-C":
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    else:
        os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if how == "Ctrl-C":
        assert proc.returncode == 1, err
        assert b"Traceback" not in err and err.strip().splitlines()[-1] == b"Aborted!"
    else:
        assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and [
        d for d in Path("/proc").glob("[0-9]*") if str(path).encode() in _cmdline(d)
    ]:
        time.sleep(0.1)
    assert not [d for d in Path("/proc").glob("[0-9]*") if str(path).encode() in _cmdline(d)], "reader left"
    rows = tables(db)
    assert len(rows["inputs"]) == 1 and rows["connections"] and apps(rows) == {b""}
    with Store(db) as store:
        store.verify()


def _descendants(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _cmdline(d: Path) -> bytes:
    try:
        return (d / "cmdline").read_bytes()
    except OSError:
        return b""
