from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from audit.errors import StoreError
from audit.models import (
    AppInfo,
    Connection,
    DataAccess,
    DataFinding,
    DnsRecord,
    Endpoint,
    HttpRequestData,
    IpInfo,
    ScanResult,
    Sdk,
    Source,
)
from audit.store import SCHEMA_VERSION, Store, default_db_path


def _scan() -> ScanResult:
    return ScanResult(
        app=AppInfo("com.example.x", "1.0", "1", "ab" * 32, "x.apk", "apk"),
        endpoints=(
            Endpoint(
                value="https://api.example-cn.cn/v1",
                host="api.example-cn.cn",
                domain="example-cn.cn",
                kind="url",
                sources=(Source("dex", "classes.dex"),),
                classes=("com.example.x.Api",),
                sdk=None,
            ),
        ),
        sdks=(Sdk("tencent_bugly", "Bugly", "Tencent", "CN", "crash reporting", ("code: 3 classes",), 3),),
        permissions=("android.permission.INTERNET",),
        data_access=(DataAccess("location", ("android.permission.ACCESS_FINE_LOCATION",)),),
        errors=("classes2.dex: corrupt DEX header",),
    )


def test_scan_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    with Store(db) as s:
        s.add_scan(_scan())
    with Store(db) as s:
        [(label, result)] = s.scans()
        assert label == "com.example.x"
        assert result == _scan()
        assert s.apps() == ["com.example.x"]
        assert s.inputs()[0]["sha256"] == "ab" * 32


def test_connections_findings_requests_round_trip(tmp_path: Path) -> None:
    finding = DataFinding("imei", "query:imei", "plain", "known", "35•••••••••1234")
    req = HttpRequestData("https://a.qq.com/x?imei=1", (("Host", "a.qq.com"),), b"\x00\x01body", True)
    c = Connection(
        ts=10.0, source="live", protocol="https", tls="intercepted", app="app", host="a.qq.com",
        ip="183.3.226.35", port=443, query_keys=("imei",), bytes_out=10, bytes_in=20,
        findings=(finding,), request=req,
    )  # fmt: skip
    with Store(tmp_path / "c.sqlite") as s:
        assert s.add_connections([c, Connection(ts=5.0, source="pcap", protocol="udp", app="other")]) == 2
        rows = list(s.connections("app"))
        assert len(rows) == 1
        cid, got = rows[0]
        assert got == c  # request is excluded from equality by design
        assert got.findings == (finding,)
        assert list(s.requests("app")) == [(cid, req)]
        s.replace_findings(cid, [])
        assert next(s.connections("app"))[1].findings == ()
        assert [x[1].ts for x in s.connections()] == [5.0, 10.0]
        assert s.connection_count() == 2 and s.connection_count("app") == 1


def test_dns_names_keep_first_asked_order() -> None:
    with Store() as s:
        s.add_dns([DnsRecord(1.0, "live", "A.Example.CN.", "A", ("1.2.3.4", "1.2.3.5"), "app")])
        s.add_dns([DnsRecord(2.0, "live", "b.example.cn", "A", ("1.2.3.4",), "app")])
        s.add_dns([DnsRecord(3.0, "live", "nx.example.cn", "A", (), "app")])
        assert s.dns_names() == {"1.2.3.4": ["a.example.cn", "b.example.cn"], "1.2.3.5": ["a.example.cn"]}
        assert len(s.dns_records("app")) == 4


def test_ip_info_cache() -> None:
    info = IpInfo("8.8.8.8", "public", "US", None, 15169, "GOOGLE", "test-db", "2024-01-01")
    with Store() as s:
        s.cache_ip_info([info])
        assert s.cached_ip_info() == {"8.8.8.8": info}
        flagged = IpInfo(
            "1.1.1.1",
            "public",
            "AU",
            asn=13335,
            network_flags=("anycast", "drop"),
            flags_database="X (2022-10-29)",
        )
        s.cache_ip_info([flagged])
        assert s.cached_ip_info()["1.1.1.1"] == flagged


def test_ip_info_cached_before_version_4_reads_without_flags(tmp_path: Path) -> None:
    from audit.store import MIGRATIONS

    db = tmp_path / "v3.sqlite"
    raw = sqlite3.connect(db)
    for m in MIGRATIONS[:3]:
        raw.executescript(m)
    raw.execute("PRAGMA user_version = 3")
    raw.execute("INSERT INTO ip_info(ip, scope, country, asn) VALUES ('8.8.8.8', 'public', 'US', 15169)")
    raw.commit()
    raw.close()
    with Store(db) as s:
        assert s.cached_ip_info()["8.8.8.8"] == IpInfo("8.8.8.8", "public", "US", asn=15169)


def test_migrations_are_idempotent_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    Store(db).close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrates_from_version_1(tmp_path: Path) -> None:
    from audit.store import MIGRATIONS

    db = tmp_path / "v1.sqlite"
    raw = sqlite3.connect(db)
    raw.executescript(MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO connections(ts, source, protocol) VALUES (1, 'har', 'https')")
    raw.commit()
    raw.close()
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.connection_count() == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this tool"):
        Store(db)


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b"\x00" * 4096])
def test_garbage_file_is_a_store_error(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "bad.sqlite"
    db.write_bytes(content)
    with pytest.raises(StoreError, match="bad.sqlite"):
        Store(db)


def test_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "x.sqlite")


def test_default_db_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_DB", raising=False)
    assert default_db_path() == "audit.sqlite"
    monkeypatch.setenv("AUDIT_DB", "/tmp/x.sqlite")
    assert default_db_path() == "/tmp/x.sqlite"


def test_concurrent_reader_sees_committed_rows(tmp_path: Path) -> None:
    db = tmp_path / "wal.sqlite"
    with Store(db) as writer, Store(db) as reader:
        writer.add_connections([Connection(ts=1.0, source="live", protocol="tcp")])
        assert reader.connection_count() == 1


def test_input_notes_round_trip_and_migration_from_version_4(tmp_path: Path) -> None:
    from audit.store import MIGRATIONS

    db = tmp_path / "v4.sqlite"
    raw = sqlite3.connect(db)
    for m in MIGRATIONS[:4]:
        raw.executescript(m)
    raw.execute("PRAGMA user_version = 4")
    raw.execute("INSERT INTO inputs(kind, path, app, added_at) VALUES ('har', 'old.har', '', 1)")
    raw.commit()
    raw.close()
    with Store(db) as s:
        assert s.inputs()[0]["notes"] == []
        i = s.record_input("live", "mitmproxy regular", notes=["first", "two\nlines"])
        assert s.inputs()[1]["notes"] == ["first", "two lines"]
        s.set_input_notes(i, ["3 record(s) could not be stored"])
        assert s.inputs()[1]["notes"] == ["3 record(s) could not be stored"]


def test_add_records_is_one_transaction() -> None:
    with Store() as s:
        good = Connection(ts=1.0, source="live", protocol="https", host="a.example")
        bad = Connection(ts=2.0, source="live", protocol="https", host="b\udcff.example")
        with pytest.raises(UnicodeEncodeError):
            s.add_records([good, DnsRecord(1.0, "live", "a.example", "A", ("1.2.3.4",)), bad])
        assert s.connection_count() == 0 and s.dns_records() == []
        assert s.add_records([good, DnsRecord(1.0, "live", "a.example", "A", ("1.2.3.4",))]) == (1, 1)


@pytest.mark.parametrize(
    "value",
    [
        (),
        ("seq", "k"),
        (("user-agent", "okhttp/4.12.0"), ("accept", "*/*")),
        (("x-q", 'a "quoted" \\ value'), ("ctl", "\x00\x1f\x7f"), ("ü", "日本 \ud83d\ude00")),
        (("lone", "\ufffd"),),
    ],
)
def test_row_lists_are_encoded_exactly_as_json_dumps(value: tuple) -> None:
    # the stored text of headers and query keys is read back with json.loads by every layer
    from audit.store import _dumps_list

    assert _dumps_list(value) == json.dumps(value)
    assert json.loads(_dumps_list(value)) == json.loads(json.dumps(value))


def test_remembered_query_keys_texts_are_those_of_json_dumps() -> None:
    # Query keys' texts are remembered per tuple; equal tuples of other types must not share one.
    from audit.store import _query_keys_text

    for keys in [
        ("a", "b"),
        (1,),
        (True,),
        (1.0,),
        ("a", "b"),
        (True,),
        ("é", "\u2603"),
        (),
        ["a"],
        ("a", 1),
        ("a", True),
    ]:
        assert _query_keys_text(keys) == json.dumps(keys)  # type: ignore[arg-type]


def test_row_list_encoder_refuses_what_json_dumps_refuses() -> None:
    from audit.store import _dumps_list

    with pytest.raises(TypeError, match="not JSON serializable"):
        _dumps_list((("k", b"bytes"),))
