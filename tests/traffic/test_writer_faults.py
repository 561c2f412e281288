"""Fault isolation of the live writer (issue 15): one record the case file cannot take never stops
recording. Flows with lone surrogates (mitmproxy's ``surrogateescape`` decoding of non-UTF-8 bytes)
go through the real addon with mitmproxy's test helpers; records no sanitising can save are logged
with their flow id, skipped and counted (``done()`` summary, the capture's ``inputs`` notes)."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.test import taddons, tflow

from audit.models import Connection, DnsRecord
from audit.store import Store
from audit.traffic import addon as addon_module
from audit.traffic.addon import Recorder
from audit.traffic.batch_writer import BatchWriter, is_store_fault, skipped_note


def rows(db: Path) -> list[Connection]:
    with Store(db) as s:
        return [c for _, c in s.connections()]


def good_flow(i: int) -> Any:
    f = tflow.tflow(resp=True)
    f.request.host = "good.example"
    f.request.path = f"/ok/{i}"
    f.server_conn.peername = ("10.0.0.1", 443)
    return f


def _poison_path(f: Any) -> None:
    f.request.path = "/p\udcff\udcfe?k\udcff=1&ok=2"


def _poison_header(f: Any) -> None:
    f.request.headers["content-type"] = "text/\udcff"
    f.request.headers["x-\udcfe"] = "\udcff"
    f.response.headers["content-type"] = "image/\udcfe"


def _poison_host(f: Any) -> None:
    f.request.host = "h\udcff.example"


def _poison_body(f: Any) -> None:
    f.request.method = "POST"
    f.request.headers["content-type"] = "application/json; charset=utf-8"
    f.request.headers["content-encoding"] = "gzip"  # and not gzip at all
    f.request.raw_content = b'{"a": "\xff\xfe\xed\xa0\x80"}'


def _poison_error(f: Any) -> None:
    from mitmproxy.flow import Error

    f.error = Error("upstream said \udcff")


POISONS: dict[str, Callable[[Any], None]] = {
    "path": _poison_path, "header": _poison_header, "host": _poison_host, "body": _poison_body,
    "error": _poison_error,
}  # fmt: skip


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_lone_surrogates_are_stored_sanitised_and_later_flows_recorded(tmp_path: Path, writer: str) -> None:
    db = tmp_path / "case.sqlite"
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_app="com.example.app", audit_flush_interval=50)
        for i, (name, poison) in enumerate(POISONS.items()):
            f = good_flow(i)
            f.request.path = f"/{name}"
            poison(f)
            r.response(f)
            r.response(good_flow(100 + i))
            assert r.writer is not None and r.writer.flush()  # each its own batch: the writer survives each
        r.response(good_flow(999))
        r.done()
    got = rows(db)
    assert len(got) == 2 * len(POISONS) + 1
    assert sorted(
        c.path or "" for c in got if c.host == "good.example" and (c.path or "").startswith("/ok/")
    ) == sorted(f"/ok/{i}" for i in [*range(100, 100 + len(POISONS)), 999])
    by_path = {c.path: c for c in got}
    assert by_path["/p\ufffd\ufffd"].query_keys == ("k\ufffd", "ok")
    assert by_path["/header"].request_content_type == "text/\ufffd"
    assert by_path["/header"].response_content_type == "image/\ufffd"
    assert any(c.host == "h\ufffd.example" for c in got)
    assert by_path["/error"].error == "upstream said \ufffd"
    with Store(db) as s:
        requests = dict(s.requests())
        assert all(i["notes"] == [] for i in s.inputs())  # nothing had to be skipped
    assert any(h == ("x-\xfe", "\xff") for req in requests.values() for h in req.headers)


def _unstorable(conn: Connection) -> Connection:
    # A value no sanitising turns into something SQLite binds (a field of the wrong type).
    return dataclasses.replace(conn, status=object())  # type: ignore[arg-type]


def _make_some_unstorable(monkeypatch: pytest.MonkeyPatch, bad: Callable[[Any], bool]) -> None:
    real = addon_module.http_connection

    def http_connection(flow: Any, **kw: Any) -> Connection:
        conn = real(flow, **kw)
        return _unstorable(conn) if bad(flow) else conn

    monkeypatch.setattr(addon_module, "http_connection", http_connection)


def test_unstorable_record_is_logged_with_flow_id_skipped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "case.sqlite"
    _make_some_unstorable(monkeypatch, lambda f: f.request.path == "/bad")
    r = Recorder(writer="thread")
    bad = good_flow(0)
    bad.request.path = "/bad"
    with caplog.at_level(logging.INFO, logger="audit"), taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=600_000)
        r.response(good_flow(1))
        r.response(bad)  # in the same batch as good ones
        r.response(good_flow(2))
        r.done()
    assert sorted(c.path or "" for c in rows(db)) == ["/ok/1", "/ok/2"]
    assert any(bad.id in m and "skipped" in m for m in caplog.messages)
    assert any("1 skipped as unstorable" in m for m in caplog.messages)  # the done() summary
    with Store(db) as s:
        (live,) = [i for i in s.inputs() if i["kind"] == "live"]
    assert live["notes"] == [skipped_note(1)]


def test_unpicklable_record_is_skipped_by_the_process_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "case.sqlite"
    real = addon_module.http_connection

    def http_connection(flow: Any, **kw: Any) -> Connection:
        conn = real(flow, **kw)
        return dataclasses.replace(conn, error=lambda: None) if flow.request.path == "/bad" else conn  # type: ignore[arg-type]

    monkeypatch.setattr(addon_module, "http_connection", http_connection)
    r = Recorder(writer="process")
    bad = good_flow(0)
    bad.request.path = "/bad"
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=600_000)
        r.response(good_flow(1))
        r.response(bad)
        r.response(good_flow(2))
        assert r.writer is not None and r.writer.flush()
        assert r.writer.stats.skipped == 1 and r.writer.stats.connections == 2
        _make_some_unstorable(monkeypatch, lambda f: f.request.path == "/bad2")
        bad2 = good_flow(3)
        bad2.request.path = "/bad2"
        r.response(bad2)  # pickles, but the case file refuses it: skipped in the child
        r.response(good_flow(4))
        writer = r.writer
        r.done()
    assert writer.stats.skipped == 2  # the child's last counters arrive on close
    assert sorted(c.path or "" for c in rows(db)) == ["/ok/1", "/ok/2", "/ok/4"]
    with Store(db) as s:
        (live,) = [i for i in s.inputs() if i["kind"] == "live"]
    assert live["notes"] == [skipped_note(2)]


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_writer_survives_1000_poisoned_flows_among_10000_good_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """The floor of issue 15 (correctness only: its timing is benchmarks/writer_faults.py)."""
    db = tmp_path / "case.sqlite"
    # One poisoned flow in ten is beyond sanitising; the others carry lone surrogates.
    _make_some_unstorable(monkeypatch, lambda f: f.request.path.startswith("/unstorable"))
    poisons = list(POISONS.values())
    r = Recorder(writer=writer)
    with taddons.context(r) as tctx:
        tctx.configure(r, audit_db=str(db), audit_flush_interval=20)
        bad = 0
        for i in range(11_000):
            if i % 11 == 5:
                f = good_flow(i)
                if bad % 10 == 0:
                    f.request.path = f"/unstorable/{i}"
                else:
                    f.request.path = f"/poisoned/{i}"
                    poisons[bad % len(poisons)](f)
                bad += 1
            else:
                f = good_flow(i)
            r.response(f)
        assert bad == 1000
        writer_obj = r.writer
        r.done()
    assert writer_obj is not None and writer_obj.stats.skipped == 100 and writer_obj.stats.dropped == 0
    with Store(db) as s:
        paths = [c.path or "" for _, c in s.connections()]
    good = {p for p in paths if p.startswith("/ok/")}
    assert good == {f"/ok/{i}" for i in range(11_000) if i % 11 != 5}
    assert len(paths) == 10_000 + 900  # the sanitised poisoned ones are kept too


def test_batch_writer_isolates_records_in_one_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", check_same_thread=False)
    w = BatchWriter(store, flush_interval=600)
    w.put(Connection(ts=1.0, source="live", protocol="https", host="a.example"), "f1")
    w.put(DnsRecord(ts=1.0, source="live", name="a.example", answers=("1.2.3.4",)), "f2")
    w.put(Connection(ts=2.0, source="live", protocol="https", host=b"\xff", port=object()), "f3")  # type: ignore[arg-type]
    w.put(DnsRecord(ts=float("nan"), source="live", name="b.example"), "f4")  # no usable start time
    w.put(Connection(ts=3.0, source="live", protocol="https", host="c\udcff.example", bytes_out=2**80), "f5")
    assert w.flush()
    assert (w.stats.connections, w.stats.dns, w.stats.skipped, w.stats.dropped) == (2, 1, 2, 0)
    w.close()
    with Store(tmp_path / "c.sqlite") as s:
        assert [(c.host, c.bytes_out) for _, c in s.connections()] == [
            ("a.example", 0),
            ("c\ufffd.example", 0),
        ]
        assert [d["name"] for d in s.dns_records()] == ["a.example"]


def test_a_locked_case_file_is_retried_not_skipped(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    store = Store(db, check_same_thread=False)
    store.conn.execute("PRAGMA busy_timeout = 0")
    w = BatchWriter(store, flush_interval=600)
    other = sqlite3.connect(db, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    w.put(Connection(ts=1.0, source="live", protocol="https", host="a.example"), "f1")
    w.flush(timeout=10)
    assert w.stats.skipped == 0 and w.stats.errors >= 1  # not blamed on the record
    other.rollback()
    other.close()
    assert w.flush()
    w.close()
    assert [c.host for c in rows(db)] == ["a.example"]


@pytest.mark.parametrize(
    ("error", "store_fault"),
    [(sqlite3.OperationalError("database is locked"), True), (sqlite3.DatabaseError("database disk image is malformed"), True),
     (sqlite3.InterfaceError("Error binding parameter 1"), False), (sqlite3.ProgrammingError("type"), False),
     (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), False), (OverflowError("int"), False)],
)  # fmt: skip
def test_store_faults_told_from_record_faults(error: Exception, store_fault: bool) -> None:
    assert is_store_fault(error) is store_fault
