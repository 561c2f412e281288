"""HAR 1.2 import: field mapping, damaged files, the demo and hostile captures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audit.errors import ImportFormatError
from audit.store import Store
from audit.traffic import records
from audit.traffic.importers import har, import_file
from tests.conftest import FIXTURES
from tests.helpers.traffic import entry, write_har

CAPTURES = FIXTURES / "captures"


def import_one(tmp_path: Path, e: dict[str, Any]) -> tuple[Any, Any]:
    store = Store()
    import_file(write_har(tmp_path / "one.har", [e]), store)
    ((cid, conn),) = store.connections()
    reqs = dict(store.requests())
    return conn, reqs.get(cid)


def test_entry_fields(tmp_path: Path) -> None:
    c, r = import_one(tmp_path, entry())
    assert (c.source, c.protocol, c.tls, c.host, c.ip, c.port) == (
        "har",
        "https",
        "intercepted",
        "api.example.net",
        "203.0.113.7",
        443,
    )
    assert (c.method, c.path, c.query_keys, c.status) == ("POST", "/v1/x", ("a", "b"), 200)
    assert c.ts == pytest.approx(1718703000.25) and c.end_ts == pytest.approx(1718703000.3705)
    assert (c.bytes_out, c.bytes_in) == (8, 100)  # -1 sizes are unknown, not negative
    assert (c.request_content_type, c.response_content_type, c.http_version) == (
        "application/json",
        "application/json",
        "HTTP/2.0",
    )
    assert r.url == "https://api.example.net/v1/x?a=1&b=2" and r.body == b'{"k": 1}'
    assert ("Content-Type", "application/json") in r.headers


@pytest.mark.parametrize(
    "over, check",
    [
        ({"serverIPAddress": "[2001:db8::5]"}, lambda c, r: c.ip == "2001:db8::5"),
        ({"serverIPAddress": ""}, lambda c, r: c.ip is None),
        ({"connection": "203.0.113.7:8443"}, lambda c, r: c.port == 8443),
        ({"connection": "[2001:db8::5]:8443"}, lambda c, r: c.port == 8443),
        ({"connection": "1234"}, lambda c, r: c.port == 443),  # Chrome: a connection id, not a port
        ({"startedDateTime": "2024-06-18T11:30:00.000+02:00"}, lambda c, r: c.ts == 1718703000.0),
        (
            {"response": {"status": 0, "_error": "net::ERR_CONNECTION_REFUSED"}},
            lambda c, r: c.status is None and c.error == "net::ERR_CONNECTION_REFUSED",
        ),
        (
            {"response": {"status": 200, "headersSize": -1, "bodySize": -1, "content": {"size": 77}}},
            lambda c, r: c.bytes_in == 77,
        ),
    ],
)
def test_entry_variants(tmp_path: Path, over: dict[str, Any], check: Any) -> None:
    c, r = import_one(tmp_path, entry(**over))
    assert check(c, r), c


def test_post_data_forms(tmp_path: Path) -> None:
    e = entry()
    e["request"]["postData"] = {
        "mimeType": "application/octet-stream",
        "encoding": "base64",
        "text": base64.b64encode(b"\x00\x01binary").decode(),
    }
    _, r = import_one(tmp_path, e)
    assert r.body == b"\x00\x01binary"
    e["request"]["postData"] = {
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "adid", "value": "a b"}, {"name": "x", "value": "1"}],
    }
    c, r = import_one(tmp_path, e)
    assert r.body == b"adid=a%20b&x=1" and c.request_content_type == "application/x-www-form-urlencoded"


def test_websocket_and_plain_http(tmp_path: Path) -> None:
    store = Store()
    import_file(
        write_har(
            tmp_path / "w.har", [entry("wss://im.example.net/ws"), entry("http://cdn.example.net:8080/a.js")]
        ),
        store,
    )
    got = sorted((c.protocol, c.tls, c.port) for _, c in store.connections())
    assert got == [("http", "none", 8080), ("wss", "intercepted", 443)]


def test_bom_and_sniffing_ignore_extension(tmp_path: Path) -> None:
    path = write_har(tmp_path / "capture.pcap", [entry()], bom=True)
    s = import_file(path, Store())
    assert (s.format, s.connections) == ("har", 1)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"log": {"entries": [', "invalid JSON at line 1"),
        ('{"log": {"version": "1.2"}, "entries": []}', "no log.entries list"),
        (
            '{"log": {"entries": [{"request": {"url": "https://x.example"}}]}}',
            "log.entries[0] is malformed (missing 'startedDateTime')",
        ),
        (
            '{"log": {"entries": [{"startedDateTime": "yesterday", "request": {"url": "https://x.example"}}]}}',
            "log.entries[0] is malformed",
        ),
        ('{"log": {"entries": ' + "[" * 5000 + "]" * 5000 + "}}", "JSON nested too deeply"),
    ],
)
def test_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.har"
    path.write_text(text)
    with pytest.raises(ImportFormatError) as e:
        import_file(path, Store())
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "deep.har"
    path.write_text('{"log": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}")
    with pytest.raises(ImportFormatError, match="nested too deeply|no log.entries"):
        import_file(path, Store())


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(har, "MAX_HAR_BYTES", 100)
    path = write_har(tmp_path / "big.har", [entry()])
    with pytest.raises(ImportFormatError, match="larger than the"):
        import_file(path, Store())


def test_all_or_nothing(tmp_path: Path) -> None:
    """A bad entry late in a file leaves nothing of that file behind, and earlier imports intact."""
    store = Store(tmp_path / "case.sqlite")
    import_file(write_har(tmp_path / "good.har", [entry(), entry()]), store)
    bad = write_har(tmp_path / "bad.har", [entry()] * 5000 + [{"request": "nonsense"}])
    with pytest.raises(ImportFormatError, match=r"log.entries\[5000\]"):
        import_file(bad, store)
    assert store.connection_count() == 2
    assert len(list(store.requests())) == 2
    assert [i["kind"] for i in store.inputs()] == ["har"]


def test_demo_har() -> None:
    store = Store()
    s = import_file(CAPTURES / "messenger.har", store, app="com.example.messenger")
    conns = [c for _, c in store.connections()]
    assert 150 <= s.connections == len(conns) <= 300 and s.errors == ()
    assert max(c.ts for c in conns) - min(c.ts for c in conns) > 540  # about ten minutes
    hosts = {c.host for c in conns}
    # in the binary, and configured at run time (CDNs)
    assert {"api.messenger-example.cn", "android.bugly.qq.com", "graph.facebook.com", "119.29.29.29"} <= hosts
    assert {"msgr-media.akamaized.net", "sf16-fe-tos.pglstatp-toutiao.com"} <= hosts
    assert all(c.ip and not c.ip.startswith(("10.", "192.168.")) for c in conns)
    assert {c.protocol for c in conns} == {"https", "http", "wss"}


def test_hostile_har_kept_verbatim() -> None:
    store = Store()
    s = import_file(CAPTURES / "hostile.har", store)
    conns = [c for _, c in store.connections()]
    assert s.connections == 7
    blob = json.dumps([c.to_dict() for c in conns])
    assert "<svg onload=alert(1)>" in blob and "</script><script>" in blob
    # Not an IP address: left out (issue 15: IP fields must parse as addresses), and said so.
    assert not any(c.ip and "198.51.100.9" in c.ip for c in conns)
    assert any("server IP that is not an IP address" in e and "<b>198.51.100.9</b>" in e for e in s.errors)


def test_demo_hosts_agree_with_the_apk_truth() -> None:
    """The capture's "in the binary" hosts are exactly those the demo APK's truth file lists."""
    from tests.fixtures.captures.build_captures import HOSTS

    truth = FIXTURES / "apks" / "messenger.truth.json"
    if not truth.exists():
        pytest.skip("APK fixtures not built")
    text = truth.read_text(encoding="utf-8")
    assert {h for h, v in HOSTS.items() if v.in_binary} == {
        h for h in HOSTS if f'"{h}' in text or f"//{h}" in text
    }


# ---- found by fuzzing (benchmarks/fuzz_import.py) --------------------------------------------


def test_lone_surrogate_escapes_are_stored(tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"): json.load gives a str SQLite cannot encode."""
    e = entry("https://api.example.net/\ud800x?k\udfff=1")
    e["request"]["headers"].append({"name": "X-\udc00", "value": "v\ud83d"})
    e["request"]["method"] = "P\udfffST"
    c, r = import_one(tmp_path, e)  # json.dumps writes them as \ud800 escapes
    assert c.path == "/\ufffdx" and c.method == "P\ufffdST" and c.query_keys == ("a", "b")
    assert r.url == "https://api.example.net/\ufffdx?k\ufffd=1" and ("X-\ufffd", "v\ufffd") in r.headers


def test_numbers_sqlite_cannot_store(tmp_path: Path) -> None:
    """An integer beyond 64 bits raised OverflowError in the insert; now it counts as unknown."""
    e = entry(
        response={
            "status": 10**30,
            "headersSize": 10**400,
            "bodySize": 1,
            "content": {"size": 2, "mimeType": "text/plain"},
        }
    )
    e["request"]["bodySize"] = 2**63
    c, _ = import_one(tmp_path, e)
    assert (c.status, c.bytes_in, c.bytes_out) == (None, 0, 0)


@pytest.mark.parametrize("over", [{"time": 10**400}, {"response": {"status": 1e999}}])
def test_numbers_python_cannot_convert(tmp_path: Path, over: dict[str, Any]) -> None:
    """OverflowError (int → float, inf → int) escaped the entry conversion."""
    path = tmp_path / "big.har"
    text = json.dumps({"log": {"entries": [entry(**over)]}}).replace("Infinity", "1e999")
    path.write_text(text)
    with pytest.raises(ImportFormatError, match=r"log.entries\[0\] is malformed"):
        import_file(path, Store())


def test_error_quoting_a_hostile_value_stays_one_short_line(tmp_path: Path) -> None:
    path = write_har(tmp_path / "t.har", [entry(startedDateTime="\x1b[2J\u202e" + "9" * 100_000)])
    with pytest.raises(ImportFormatError) as e:
        import_file(path, Store())
    msg = str(e.value)
    assert "log.entries[0] is malformed" in msg and msg.isprintable() and len(msg) < len(str(path)) + 250


def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """The file name is recorded as the input's path: a non-UTF-8 byte (a lone surrogate in Python)
    made the insert of the inputs row raise."""
    path = write_har(tmp_path / "cap\udcff.har", [entry()])  # the file name byte 0xff
    store = Store()
    s = import_file(path, store, app="com.example\udcff")
    assert s.connections == 1 and s.path.endswith("cap\\xff.har")
    assert [(i["path"], i["app"]) for i in store.inputs()] == [(s.path, "com.example\ufffd")]


@pytest.mark.parametrize("mime", [{"a": None}, ["x"], 7])
def test_post_mime_type_of_another_json_type(tmp_path: Path, mime: Any) -> None:
    """A dict here went into the insert as is: sqlite3.ProgrammingError ("type 'dict' is not supported")."""
    e = entry()
    e["request"]["postData"]["mimeType"] = mime
    c, r = import_one(tmp_path, e)
    assert c.request_content_type == str(mime) and r.body == b'{"k": 1}'


# ---- values validated at import (issue 15) -------------------------------------------------------


def test_huge_server_ip_is_left_out_with_a_warning_naming_the_entry(tmp_path: Path) -> None:
    path = write_har(
        tmp_path / "ip.har",
        [entry(), entry(serverIPAddress="9" * (40 << 20)), entry(serverIPAddress={"a": 1})],
    )
    store = Store()
    s = import_file(path, store)
    assert s.connections == 3
    assert sorted(str(c.ip) for _, c in store.connections()) == ["203.0.113.7", "None", "None"]
    (line,) = [e for e in s.errors if "server IP" in e]
    assert line.startswith("2 record(s) with a server IP that is not an IP address")
    assert "log.entries[1] 999" in line and "log.entries[2] {'a': 1}" in line and len(line) < 300
    assert store.inputs()[0]["notes"] == list(s.errors)


@pytest.mark.parametrize(
    ("url", "kind"), [({"name": 5}, "an object"), (5, "a number"), (["x"], "an array"), (None, "null")]
)
def test_url_of_another_json_type_is_skipped_with_a_warning(tmp_path: Path, url: Any, kind: str) -> None:
    bad = entry()
    bad["request"]["url"] = url
    store = Store()
    s = import_file(write_har(tmp_path / "u.har", [entry(), bad, entry("https://b.example/y")]), store)
    assert s.connections == 2
    assert sorted(c.host or "" for _, c in store.connections()) == ["api.example.net", "b.example"]
    assert s.errors == (f"1 record(s) whose request.url is {kind}, not a string: skipped (log.entries[1])",)


def test_implausible_times_are_flagged_and_kept(tmp_path: Path) -> None:
    entries = [
        entry(),
        entry(startedDateTime="1970-01-01T00:00:01Z"),
        entry(startedDateTime="9999-12-31T23:59:59Z"),
    ]
    store = Store()
    s = import_file(write_har(tmp_path / "t.har", entries), store)
    assert s.connections == 3
    (line,) = s.errors
    assert line.startswith("2 record(s) with a time outside 2008-01-01..now+1 day: kept")
    assert "log.entries[1] 1.0" in line and "log.entries[2]" in line
    assert len(store.connection_times()) == 1  # the timeline leaves them out


def test_url_split_agrees_with_urlsplit() -> None:
    """The one split of the common URL shape (``records.url_parts``) gives urlsplit's parts, and
    anything it does not take (user info, IPv6 literals, whitespace, non-ASCII, ports out of range)
    is urlsplit's."""
    import random
    from urllib.parse import urlsplit

    urls = [
        "https://api.example.com/v1/x?imei=1&a=2#frag", "HTTP://API.Example.COM:8080", "http://h?q", "http://h#f",
        "https://1.2.3.4:443/p/q;r?x=?y", "wss://a.b/c", "http://h:0/", "http://h:65535/", "http://h:65536/",
        "http://h:/x", "http://user:pw@h/x", "http://[2001:db8::1]:8443/x", "http://h/a b", "http://h/a\tb",
        "http://h\u00e9.example/", "https://a_b.example/x", "ftp://h/x", "1http://h/", "http:/h/x", "//h/x",
        "http://h/x?a#b#c", "http://h//x", "http://h.:80/", "http://h/\x01", " http://h/", "http://h/%41?%42",
    ]  # fmt: skip
    rng = random.Random(12)
    alphabet = "aZ09.-_:/?#@[]% \t+\u00e9"
    urls += [
        "http://" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)
    ]
    for url in urls:
        try:
            want = urlsplit(url)
            want_parts = (want.scheme, want.hostname, want.port, want.path, want.query)
        except ValueError as e:
            want_parts = ("error", type(e))
        try:
            got = records.url_parts(url)
            got_parts = (got.scheme, got.hostname, got.port, got.path, got.query)
        except ValueError as e:
            got_parts = ("error", type(e))
        assert got_parts == want_parts, url


def test_the_garbage_collector_is_set_back_after_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An import collects less often while it runs (issue 15); afterwards the collector is as it was,
    # and objects the caller froze stay frozen (it is left alone then).
    import gc
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 1)
    seen: list[tuple[tuple[int, int, int], int]] = []
    real = Store.add_traffic

    def add_traffic(self: Store, *args: Any, **kwargs: Any) -> tuple[int, int]:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "add_traffic", add_traffic)
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()  # 0 on Python 3.11; 3.12 starts with some of its own
    with Store(tmp_path / "case.sqlite") as store:
        import_file(FIXTURES / "captures" / "messenger.har", store)
        assert seen[-1][0][0] == 100_000 and seen[-1][1] > 0
        assert gc.get_threshold() == before and gc.get_freeze_count() == frozen_before
        gc.freeze()
        try:
            frozen = gc.get_freeze_count()
            import_file(FIXTURES / "captures" / "hostile.har", store)
            assert seen[-1][0] == before
            assert 0 < gc.get_freeze_count() <= frozen  # still frozen (less whatever was freed)
        finally:
            gc.unfreeze()
