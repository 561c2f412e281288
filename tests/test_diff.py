"""audit diff: two case files, two APKs, bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.diff import compare, diff_paths, render_text, snapshot
from audit.enrich.geoip import Enricher
from audit.errors import InputError
from audit.models import Connection, DataFinding
from audit.store import Store
from tests.conftest import FIXTURES
from tests.helpers.cases import APP, COMPANIES, make_case, make_scan


def _case(path: Path, *, new: bool) -> Path:
    with Store(path) as s:
        if not new:
            make_case(s)
        else:
            s.add_scan(make_scan(extra_hosts=("ads.newtracker.example",)), app=APP)
            s.add_connections([
                Connection(1.0, "har", "https", "intercepted", APP, "ads.newtracker.example", ip="198.51.100.9",
                           port=443, findings=(DataFinding("aaid", "query:adid", "plain", "pattern", "38•••"),)),
                Connection(2.0, "har", "https", "intercepted", APP, "api.example-messenger.com", ip="93.184.216.34",
                           port=443),
            ])  # fmt: skip
    return path


def test_two_case_files(tmp_path: Path) -> None:
    old = _case(tmp_path / "old.sqlite", new=False)
    new = _case(tmp_path / "new.sqlite", new=True)
    e = Enricher()
    r = compare(
        snapshot(old, enricher=e, companies=COMPANIES), snapshot(new, enricher=e, companies=COMPANIES)
    )
    assert (r.old_kind, r.new_kind) == ("case", "case") and r.changed
    c = {x.category: x for x in r.changes}
    assert c["hosts"].added == ("ads.newtracker.example",)
    assert set(c["hosts"].removed) == {"cdn.runtime-config.net", "pinned.example.org"}
    assert c["data_types"].added == ("aaid",) and c["data_types"].removed == ("android_id", "imei")
    assert "Fastly" in c["companies"].removed
    assert c["sdks"].added == c["sdks"].removed == ()
    text = render_text(r)
    assert "+ ads.newtracker.example" in text and "- imei" in text
    assert r.to_dict()["changes"][0]["category"] == "companies"  # issue 13: who and where first


def test_same_case_has_no_change(tmp_path: Path) -> None:
    old = _case(tmp_path / "a.sqlite", new=False)
    r = diff_paths(old, old, companies=COMPANIES)
    assert not r.changed and "No change" in render_text(r)


def test_two_apks() -> None:
    pytest.importorskip("audit.static.scanner")
    a, b = FIXTURES / "apks" / "messenger.apk", FIXTURES / "apks" / "obfuscated.apk"
    r = diff_paths(a, b)
    assert (r.old_kind, r.new_kind) == ("apk", "apk")
    cats = [c.category for c in r.changes]
    assert "server_countries" not in cats and "data_types" not in cats  # not knowable statically
    from audit.static.scanner import scan_path

    hosts_a = {e.host for e in scan_path(a).endpoints if e.host and not e.placeholder}
    hosts_b = {e.host for e in scan_path(b).endpoints if e.host and not e.placeholder}
    c = {x.category: x for x in r.changes}
    assert set(c["hosts"].added) == hosts_b - hosts_a and set(c["hosts"].removed) == hosts_a - hosts_b


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        snapshot(tmp_path / "missing.sqlite", companies=COMPANIES)
    with pytest.raises(InputError, match="directory"):
        snapshot(tmp_path, companies=COMPANIES)


def test_transport_security_changes(tmp_path: Path) -> None:
    """An update that drops the gateway pin and turns on cleartext and user CAs is reported as such."""
    from dataclasses import replace

    from audit.models import TransportSecurity
    from audit.static.scanner import scan_path

    old_scan = scan_path(FIXTURES / "apks" / "messenger.apk")
    t = old_scan.transport
    relaxed = replace(old_scan, transport=TransportSecurity(
        config_files=t.config_files, target_sdk=t.target_sdk, base_trust_anchors=("system", "user"),
        uses_cleartext_traffic=True, domains=tuple(d for d in t.domains if not d.pins),
    ))  # fmt: skip
    paths = []
    for name, result in (("old", old_scan), ("new", relaxed)):
        with Store(tmp_path / f"{name}.sqlite") as s:
            s.add_scan(result)
        paths.append(tmp_path / f"{name}.sqlite")
    r = diff_paths(*paths, companies=COMPANIES)
    c = {x.category: x for x in r.changes}["transport"]
    assert set(c.added) == {"cleartext allowed by default", "user-installed CAs trusted"}
    removed = set(c.removed)
    assert "pinned: gw.messenger-example.cn" in removed
    assert sum(x.startswith("pin in code: sha256/") for x in removed) == 2
    assert c.unchanged == 2  # cleartext allowed for legacy.messenger-example.cn and 10.0.0.2
    assert "+ user-installed CAs trusted" in render_text(r)
