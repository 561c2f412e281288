"""Idempotent imports (issue 12 point 7): the same file (by SHA-256) into the same case and app label
is skipped with one line; ``--replace`` re-imports it in place of its earlier rows; counts never
double. ``audit run APP --capture APP`` is a clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.output import ExitStatus
from audit.store import SCHEMA_VERSION, Store
from tests.conftest import FIXTURES
from tests.fixtures.captures.build_captures import (
    client_hello,
    dns_query,
    dns_response,
    ethernet,
    tcp_session,
    tls_record,
    udp_packet,
    write_pcap_packets,
)

PHONE = "192.168.1.23"
T0 = 1_718_703_000.0
APP = "com.example.app"
HTTP_REQ = (b"POST /v1/track?imei=358240051111110 HTTP/1.1\r\nHost: log.example.cn\r\n"
            b"Content-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"imei\": \"358240051111110\"}\n")  # fmt: skip


def capture(path: Path) -> Path:
    """A DNS lookup, a TLS connection to its answer, and a plaintext HTTP request with an IMEI."""
    pk: list[tuple[float, dpkt.Packet]] = [
        (T0, udp_packet(PHONE, 5353, "8.8.8.8", 53, dns_query("api.example.cn", 7))),
        (
            T0 + 0.01,
            udp_packet("8.8.8.8", 53, PHONE, 5353, dns_response("api.example.cn", ["43.156.32.17"], 7)),
        ),
    ]
    pk += tcp_session(PHONE, 40001, "43.156.32.17", 443, T0 + 1, [tls_record(client_hello("api.example.cn"))],
                      [b"\x16\x03\x03" + b"s" * 200])  # fmt: skip
    pk += tcp_session(
        PHONE, 40002, "119.29.29.29", 80, T0 + 2, [HTTP_REQ], [b"HTTP/1.1 204 No Content\r\n\r\n"]
    )
    write_pcap_packets(path, [(ts, ethernet(ip)) for ts, ip in pk])
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def counts(db: Path) -> dict[str, int]:
    c = sqlite3.connect(db)
    out = {
        t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("connections", "findings", "requests", "dns", "inputs")
    }
    c.close()
    return out


def destinations(db: Path) -> list[tuple[str, int, int]]:
    code, out, err = invoke("destinations", "--db", str(db), "--app", APP, "--json")
    assert code == 0, err
    return sorted((d["host"] or "", d["flows"], d["bytes_out"]) for d in json.loads(out))


def test_same_file_twice_is_skipped_and_counts_do_not_double(tmp_path: Path) -> None:
    db, pcap = tmp_path / "case.sqlite", capture(tmp_path / "cap.pcap")
    code, out, err = invoke("import", str(pcap), "--db", str(db), "--app", APP)
    assert code == 0, err
    first, dest = counts(db), destinations(db)
    assert first["connections"] == 3 and first["findings"] >= 1 and first["dns"] == 1 and first["inputs"] == 1
    # the same content under another name is the same input
    copy = tmp_path / "renamed.pcap"
    copy.write_bytes(pcap.read_bytes())
    for path in (pcap, copy):
        code, out, err = invoke("import", str(path), "--db", str(db), "--app", APP)
        assert code == ExitStatus.OK, err
        assert out == f"{path}: already imported for {APP}: skipped (--replace re-imports it)\n"
    assert counts(db) == first and destinations(db) == dest


def test_replace_refreshes_the_rows_of_that_input_only(tmp_path: Path) -> None:
    db, pcap = tmp_path / "case.sqlite", capture(tmp_path / "cap.pcap")
    assert invoke("import", str(pcap), "--db", str(db), "--app", APP)[0] == 0
    assert (
        invoke("import", str(pcap), "--db", str(db), "--app", "com.other")[0] == 0
    )  # another label: imported
    with Store(db) as s:
        before = {cid for cid, c in s.connections(APP)}
        others = {cid for cid, c in s.connections("com.other")}
        old_input = s.imported_inputs(s.inputs()[0]["sha256"], APP, ("pcap",))
    first, dest = counts(db), destinations(db)
    code, out, err = invoke("import", str(pcap), "--db", str(db), "--app", APP, "--replace")
    assert code == 0, err
    assert out.endswith("pcap, 3 connections, 1 DNS records (replaced its earlier import)\n")
    assert counts(db) == first and destinations(db) == dest
    with Store(db) as s:
        after = {cid for cid, c in s.connections(APP)}
        assert after.isdisjoint(before) and len(after) == len(before)  # new rows, the old ones gone
        assert {cid for cid, c in s.connections("com.other")} == others  # the other label's rows untouched
        new_input = s.imported_inputs(s.inputs()[0]["sha256"], APP, ("pcap",))
        assert len(new_input) == 1 and new_input != old_input
        # findings and request content went with their connections (no orphans)
        orphans = s.conn.execute(
            "SELECT (SELECT count(*) FROM findings WHERE connection_id NOT IN (SELECT id FROM connections))"
            " + (SELECT count(*) FROM requests WHERE connection_id NOT IN (SELECT id FROM connections))"
        ).fetchone()[0]
        assert orphans == 0


def test_replace_of_an_input_imported_before_rows_knew_their_input(tmp_path: Path) -> None:
    db, pcap = tmp_path / "case.sqlite", capture(tmp_path / "cap.pcap")
    assert invoke("import", str(pcap), "--db", str(db), "--app", APP)[0] == 0
    with Store(db) as s:  # as a case migrated from schema 7 records it
        s.set_meta("untracked_inputs", "1")
    first = counts(db)
    code, out, err = invoke("import", str(pcap), "--db", str(db), "--app", APP, "--replace")
    assert code == ExitStatus.ERROR
    assert err.count("\n") == 1 and err.startswith("audit: error: ") and "cannot be replaced" in err
    assert counts(db) == first


def test_migration_marks_older_inputs_as_untracked(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with Store(db) as s:
        s.record_input("pcap", "x.pcap", "ab" * 32, APP)
    c = sqlite3.connect(db)  # back to schema 8: drop the columns and meta row migration 9 added
    c.executescript(
        "ALTER TABLE connections DROP COLUMN input_id; ALTER TABLE dns DROP COLUMN input_id;"
        " DELETE FROM meta WHERE key = 'untracked_inputs'; PRAGMA user_version = 8;"
    )
    c.close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION and s.get_meta("untracked_inputs") == "1"


def test_run_with_the_apk_as_capture_is_a_clear_error(tmp_path: Path) -> None:
    apk = FIXTURES / "apks" / "messenger.apk"
    db = tmp_path / "case.sqlite"
    code, out, err = invoke(
        "run", str(apk), "--capture", str(apk), "--db", str(db), "-o", str(tmp_path / "r.html")
    )
    assert code == ExitStatus.ERROR
    assert "already imported" not in out + err
    assert err == (f"audit: error: --capture {apk}: an Android app package (apk), not saved traffic; give the app as "
                   "the first argument and captures (flow files, HAR, pcap/pcapng) with --capture\n")  # fmt: skip
    assert not (tmp_path / "r.html").exists()


def test_import_of_an_apk_names_it(tmp_path: Path) -> None:
    apk = FIXTURES / "apks" / "messenger.apk"
    code, out, err = invoke("import", str(apk), "--db", str(tmp_path / "case.sqlite"))
    assert code == ExitStatus.ERROR and "a ZIP archive (an APK or app bundle?), not saved traffic" in err


class FailingDetector:
    """Fails half-way through a file, as a crash of data detection would."""

    def __init__(self) -> None:
        self.calls = 0

    def scan(self, request: object) -> tuple[()]:
        self.calls += 1
        raise RuntimeError("detector crashed")


def test_a_failing_replace_keeps_the_earlier_rows(tmp_path: Path) -> None:
    from audit.traffic.importers import import_file

    db, pcap = tmp_path / "case.sqlite", capture(tmp_path / "cap.pcap")
    with Store(db) as s:
        first = import_file(pcap, s, app=APP)
        assert not first.skipped and first.connections == 3
        before = sorted(cid for cid, _ in s.connections())
        det = FailingDetector()
        with pytest.raises(RuntimeError, match="detector crashed"):
            import_file(pcap, s, app=APP, detector=det, replace=True)
        assert det.calls >= 1
        assert (
            sorted(cid for cid, _ in s.connections()) == before
        )  # deleted and re-read in one transaction: rolled back
        assert len(s.inputs()) == 1
        again = import_file(pcap, s, app=APP)
        assert again.skipped and (again.connections, again.dns) == (0, 0)
