"""Decrypted captures (issue 17): real TLS 1.2/1.3 sessions of curl against a local server, HTTP/1.1
and HTTP/2, captured with dumpcap on loopback, decrypted by tshark from a Decryption Secrets Block
(editcap --inject-secrets) or a separate --keylog; a PCAPdroid-layout copy with two apps; a key
log with one connection's keys missing; tshark missing."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.errors import ImportFormatError
from audit.report.data import collect_report
from audit.report.html import verdict
from audit.store import Store
from audit.traffic.importers import import_file
from audit.traffic.pii import PiiDetector
from audit.traffic.profile import load_profile
from audit.traffic.tshark import keylog_randoms
from tests.conftest import FIXTURES
from tests.helpers.pcapng_build import App, relabel
from tests.helpers.tls_capture import Received, Request, Session, inject_secrets, missing_tools, record

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")

IMEI = "354678112345612"  # the device profile's (tests/fixtures/captures/device.toml)
SESSIONS = (
    Session((Request("POST", "/v1/register?lang=en", b'{"imei": "%s", "n": 1}' % IMEI.encode()), Request("GET", "/v1/config")),
            http2=False, tls12=True),
    Session((Request("POST", "/v2/events", b'{"device": {"imei": "%s"}}' % IMEI.encode()),
             Request("PUT", "/v2/state", bytes(range(256)))), http2=True, tls12=False),
    Session((Request("POST", "/v3/log", b"plain text body"),), http2=False, tls12=False),
    Session((Request("POST", "/v4/upload", b"B" * 100_000),), http2=True, tls12=True),
)  # fmt: skip
MESSENGER = App(10123, "com.example.messenger", "Messenger")
MAPS = App(10200, "org.example.maps", "Maps")


@dataclasses.dataclass(frozen=True)
class Captured:
    plain: Path
    keylog: Path
    dsb: Path
    received: Received


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    d = tmp_path_factory.mktemp("tls")
    plain, keylog, received = record(d, SESSIONS)
    return Captured(plain, keylog, inject_secrets(plain, keylog, d / "dsb.pcapng"), received)


def detector() -> PiiDetector:
    return PiiDetector(load_profile(FIXTURES / "captures" / "device.toml"))


def sent(received: Received) -> list[tuple[str, str, bytes]]:
    return sorted((m, p, b[:65536]) for _, m, p, b in received.items)


def stored(store: Store) -> list[tuple[str, str, bytes]]:
    out = []
    methods = {cid: c.method for cid, c in store.connections()}
    for cid, r in store.requests():
        parts = urlsplit(r.url)
        out.append((methods[cid] or "", parts.path + (f"?{parts.query}" if parts.query else ""), r.body))
    return sorted(out)


def https(store: Store) -> list:
    return [
        c for _, c in store.connections() if c.protocol != "udp"
    ]  # the UDP probe that synchronises dumpcap


def test_the_server_saw_every_request(captured: Captured) -> None:
    assert len(captured.received.items) == 6
    assert {alpn for alpn, *_ in captured.received.items} == {"h2", "http/1.1"}


@pytest.mark.parametrize("how", ["dsb", "keylog"])
def test_every_request_is_in_the_case_with_its_body_and_findings(captured: Captured, how: str) -> None:
    store = Store()
    if how == "dsb":
        s = import_file(captured.dsb, store, detector=detector())
    else:
        s = import_file(captured.plain, store, detector=detector(), keylog=captured.keylog)
    assert s.errors == ()
    assert stored(store) == sent(captured.received)
    conns = https(store)
    assert len(conns) == 6
    assert all(
        c.tls == "decrypted" and c.inspected and c.protocol == "https" and c.status == 200 for c in conns
    )
    assert {c.http_version for c in conns} == {"HTTP/1.1", "HTTP/2.0"}
    assert {c.tls_version for c in conns} == {"TLSv1.2", "TLSv1.3"}
    imei = sorted(c.path or "" for c in conns if any(f.data_type == "imei" for f in c.findings))
    assert imei == ["/v1/register", "/v2/events"]
    upload = next(c for c in conns if c.path == "/v4/upload")
    assert upload.bytes_out >= 100_000
    assert s.decryption is not None
    assert (
        s.decryption.tls_connections,
        s.decryption.decrypted,
        s.decryption.undecrypted,
        s.decryption.requests,
    ) == (4, 4, 0, 6)
    # the case stores the rule's value: the inspected count in SQL agrees
    assert store.conn.execute("SELECT count(*) FROM connections WHERE inspected = 1").fetchone()[0] == 6


def test_a_key_log_missing_one_connection_counts_it_unread(captured: Captured, tmp_path: Path) -> None:
    lines = captured.keylog.read_bytes().splitlines()
    first = sorted(keylog_randoms(captured.keylog.read_bytes()))[0]
    partial = tmp_path / "partial.keylog"
    partial.write_bytes(b"\n".join(ln for ln in lines if first.encode() not in ln.lower()) + b"\n")
    store = Store()
    s = import_file(captured.plain, store, keylog=partial)
    assert s.decryption is not None
    d = s.decryption
    assert (d.tls_connections, d.decrypted, d.undecrypted, d.without_keys) == (4, 3, 1, 1)
    unread = [c for c in https(store) if not c.inspected]
    assert len(unread) == 1 and unread[0].tls == "passthrough" and unread[0].protocol == "tls"
    read = len([c for c in https(store) if c.tls == "decrypted"])
    assert read == len(stored(store)) >= 4
    lines = [v.text for v in verdict(collect_report(store, generated_at=0))]
    assert (
        f"{read} requests were read from captured TLS decrypted with its session keys; 1 TLS connection of the "
        "captures was not decrypted (no usable session keys) and not inspected." in lines
    )


def test_without_keys_nothing_is_decrypted_and_tshark_is_not_needed(captured: Captured) -> None:
    store = Store()
    s = import_file(captured.plain, store)
    assert s.decryption is None and s.errors == ()
    assert {(c.protocol, c.tls, c.inspected) for c in https(store)} == {("tls", "passthrough", False)}


def test_tshark_missing_is_said_and_the_capture_still_imported(
    captured: Captured, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    store = Store()
    s = import_file(captured.dsb, store)
    assert (
        len(s.errors) == 1 and "tshark is not on PATH" in s.errors[0] and "4 TLS connection(s)" in s.errors[0]
    )
    assert s.decryption is not None and s.decryption.undecrypted == 4
    assert all(not c.inspected for c in https(store))


def test_pcapdroid_capture_with_two_apps_and_embedded_keys(captured: Captured, tmp_path: Path) -> None:
    """The real capture rewritten in PCAPdroid's layout: the first two curl sessions are the
    messenger's, the others the maps app's; the key log rides in a DSB."""
    ports = [
        int((c.client or ":0").rsplit(":", 1)[1]) for c in sorted(https(_plain(captured)), key=lambda c: c.ts)
    ]
    assert len(ports) == 4
    app_of = {ports[0]: MESSENGER, ports[1]: MESSENGER, ports[2]: MAPS, ports[3]: MAPS}
    path = relabel(captured.plain, tmp_path / "droid.pcapng", app_of, keylog=captured.keylog.read_bytes())
    store = Store()
    s = import_file(path, store, detector=detector())
    assert s.errors == ()
    assert [a.package for a in s.apps] == ["com.example.messenger", "org.example.maps"]
    by_app = {(c.app, c.attribution, c.path) for c in https(store)}
    assert by_app == {
        ("com.example.messenger", "app-metadata", "/v1/register"),
        ("com.example.messenger", "app-metadata", "/v1/config"),
        ("com.example.messenger", "app-metadata", "/v2/events"),
        ("com.example.messenger", "app-metadata", "/v2/state"),
        ("org.example.maps", "app-metadata", "/v3/log"),
        ("org.example.maps", "app-metadata", "/v4/upload"),
    }
    assert all(c.tls == "decrypted" for c in https(store))
    # --app picks the maps app: the messenger's requests keep their own label
    store2 = Store()
    import_file(path, store2, app="org.example.maps")
    assert {c.path for _, c in store2.connections(app="org.example.maps") if c.protocol == "https"} == {
        "/v3/log",
        "/v4/upload",
    }
    assert {c.app for c in https(store2)} == {"com.example.messenger", "org.example.maps"}


def _plain(captured: Captured) -> Store:
    store = Store()
    import_file(captured.plain, store)
    return store


def test_cli_keylog_summary(captured: Captured, tmp_path: Path) -> None:
    db = tmp_path / "case.sqlite"
    r = CliRunner().invoke(
        main, ["import", str(captured.plain), "--keylog", str(captured.keylog), "--db", str(db)]
    )
    assert r.exit_code == 0, r.output
    assert "TLS decrypted: 4 of 4 connections (6 requests); 0 not inspected (0 without keys)" in r.output
    assert (
        Store(str(db)).conn.execute("SELECT count(*) FROM connections WHERE tls = 'decrypted'").fetchone()[0]
        == 6
    )


def test_keylog_errors(captured: Captured, tmp_path: Path) -> None:
    junk = tmp_path / "junk.keylog"
    junk.write_text("hello\n")
    with pytest.raises(ImportFormatError, match="not an NSS key log"):
        import_file(captured.plain, Store(), keylog=junk)
    har = tmp_path / "x.har"
    har.write_text(json.dumps({"log": {"entries": []}}))
    with pytest.raises(ImportFormatError, match="--keylog applies to pcap/pcapng"):
        import_file(har, Store(), keylog=captured.keylog)
    r = CliRunner().invoke(
        main, ["import", str(captured.plain), "--keylog", str(junk), "--db", str(tmp_path / "c.sqlite")]
    )
    assert r.exit_code == 1 and "audit: error:" in r.output and "Traceback" not in r.output
    assert os.path.exists(tmp_path / "c.sqlite")


def test_keys_found_later_replace_the_unread_rows(captured: Captured) -> None:
    """A capture imported without its keys is skipped when given again with --keylog; --replace
    re-imports it decrypted, and no count doubles."""
    store = Store()
    import_file(captured.plain, store)
    assert import_file(captured.plain, store, keylog=captured.keylog).skipped
    s = import_file(captured.plain, store, keylog=captured.keylog, replace=True)
    assert s.replaced == 1 and s.decryption is not None and s.decryption.decrypted == 4
    assert sorted((c.tls, c.protocol) for c in https(store)) == [("decrypted", "https")] * 6


def test_run_decrypts_its_captures_with_keylog(captured: Captured, tmp_path: Path) -> None:
    """audit run --keylog applies the key log to its pcap/pcapng captures, not to a HAR beside them;
    the report's verdict counts the decrypted requests."""
    apk = FIXTURES / "apks" / "messenger.apk"
    har = FIXTURES / "captures" / "messenger.har"
    db, out = tmp_path / "case.sqlite", tmp_path / "r.html"
    r = CliRunner().invoke(main, ["run", str(apk), "--capture", str(captured.plain), "--capture", str(har),
                                  "--keylog", str(captured.keylog), "--db", str(db), "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "TLS decrypted: 4 of 4 connections (6 requests)" in r.output
    with Store(str(db)) as s:
        assert s.capture_decryption("com.example.messenger") == (6, 0)
    assert "6 requests were read from captured TLS decrypted with its session keys" in out.read_text(
        encoding="utf-8"
    )


def test_long_heads_and_binary_bodies_over_http1(tmp_path: Path) -> None:
    # a request head longer than the tap's first look (4 KB) and bodies holding every byte value
    # (tabs, newlines: they follow the tap's line as they are) come out whole
    sessions = (Session((Request("GET", "/long?pad=" + "p" * 6000 + "&end=1"),
                         Request("POST", "/bin", bytes(range(256)) * 40),
                         Request("POST", "/after", b'{"imei": "%s"}' % IMEI.encode())), http2=False, tls12=False),
                Session((Request("POST", "/bin2", b"\n\t" * 3000 + bytes(range(256))),), http2=True, tls12=True))  # fmt: skip
    plain, keylog, received = record(tmp_path, sessions)
    store = Store()
    s = import_file(inject_secrets(plain, keylog, tmp_path / "dsb.pcapng"), store, detector=detector())
    assert s.errors == () and len(received.items) == 4
    assert stored(store) == sent(received)
    conns = {c.path: c for c in https(store)}
    assert [f.data_type for f in conns["/after"].findings] == ["imei"]
    assert all(c.status == 200 for c in conns.values())
