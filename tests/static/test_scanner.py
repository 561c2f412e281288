"""scan_path against every fixture's truth file, plus format sniffing and SDK evidence."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from audit.errors import InputError
from audit.models import ScanResult
from audit.static.scanner import scan_path, sniff_format
from audit.static.signatures import SignatureDb, load_signatures
from tests.conftest import FIXTURES

APKS = FIXTURES / "apks"
TRUTHS = sorted(APKS.glob("*.truth.json"))


@pytest.fixture(scope="module")
def sigs() -> SignatureDb:
    return load_signatures()


def _fixture_path(truth: dict) -> Path:
    return APKS / truth["fixture"]


@pytest.fixture(scope="module", params=TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def scanned(request: pytest.FixtureRequest, sigs: SignatureDb) -> tuple[dict, ScanResult]:
    truth = json.loads(request.param.read_text(encoding="utf-8"))
    return truth, scan_path(_fixture_path(truth), signatures=sigs)


def test_app_info(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    assert result.app.format == truth["format"]
    assert result.app.package == truth["package"]
    assert result.app.version_name == truth["version_name"]
    assert result.app.version_code == truth["version_code"]
    assert result.app.file == str(_fixture_path(truth))
    assert len(result.app.sha256) == 64
    assert result.errors == ()


def test_permissions(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    assert list(result.permissions) == sorted(truth["permissions"])
    granted = {p for d in result.data_access for p in d.permissions}
    assert granted <= set(result.permissions)


def test_every_expected_endpoint(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    got = {e.value: e for e in result.endpoints}
    for want in truth["endpoints"]:
        e = got.get(want["value"])
        assert e is not None, f"missing {want['value']!r}; found {sorted(got)}"
        assert e.kind == want["kind"], want["value"]
        assert e.host == want["host"], want["value"]
        assert e.domain == want["domain"], want["value"]
        assert e.placeholder == want["placeholder"], want["value"]
        assert e.network == want["network"], (want["value"], e.network_evidence)
        assert e.sdk == want["sdk"], want["value"]
        assert [{"kind": s.kind, "file": s.file} for s in e.sources] == want["sources"], want["value"]
        assert list(e.classes) == want["classes"], want["value"]


def test_nothing_unexpected(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    expected = {w["value"] for w in truth["endpoints"]}
    assert {e.value for e in result.endpoints} == expected


def test_absent_strings(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    values = {e.value for e in result.endpoints} | {e.host for e in result.endpoints if e.host}
    for noise in truth["absent"]:
        assert noise not in values
        assert not any(noise in v for v in values if len(noise) > 12), noise


def test_sdks(scanned: tuple[dict, ScanResult]) -> None:
    truth, result = scanned
    got = {s.id: s for s in result.sdks}
    assert sorted(got) == sorted(s["id"] for s in truth["sdks"])
    for want in truth["sdks"]:
        sdk = got[want["id"]]
        kinds = sorted({ev.split(":", 1)[0] for ev in sdk.evidence})
        assert kinds == sorted(want["evidence"]), sdk.evidence
        assert sdk.class_count == want["class_count"]
        assert sdk.owner and len(sdk.owner_country) == 2
        assert sdk.presence == "code" and sdk.packages


def test_sdk_mentions(scanned: tuple[dict, ScanResult]) -> None:
    """Vendors whose hosts are named while their code is not there are mentions, never SDKs."""
    truth, result = scanned
    assert {s.id: s.presence for s in result.sdk_mentions} == {
        m["id"]: m["presence"] for m in truth["sdk_mentions"]
    }
    assert not {s.id for s in result.sdk_mentions} & {s.id for s in result.sdks}
    for s in result.sdk_mentions:
        assert s.class_count == 0 and s.hosts and all(ev.startswith("host: ") for ev in s.evidence)


def test_evidence_wording(sigs: SignatureDb) -> None:
    result = scan_path(APKS / "multidex.apk", signatures=sigs)
    jpush = next(s for s in result.sdks if s.id == "jpush")
    assert any(
        ev.startswith("code: ") and "cn.jpush.android" in ev and ev.endswith(".dex)") for ev in jpush.evidence
    )
    assert "network: tsis.jpush.cn (classes3.dex)" in jpush.evidence


def test_split_bundle_keeps_inner_file_names(sigs: SignatureDb) -> None:
    result = scan_path(APKS / "messenger.apks", signatures=sigs)
    files = {s.file for e in result.endpoints for s in e.sources}
    assert "split_config.arm64_v8a.apk!lib/arm64-v8a/libmessenger.so" in files
    assert "base.apk!classes.dex" in files


def test_json_round_trip(sigs: SignatureDb) -> None:
    result = scan_path(APKS / "messenger.apk", signatures=sigs)
    again = ScanResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_sniffed_by_content_not_extension(tmp_path: Path, sigs: SignatureDb) -> None:
    renamed = tmp_path / "app.bin"
    renamed.write_bytes((APKS / "messenger.apk").read_bytes())
    assert scan_path(renamed, signatures=sigs).app.format == "apk"
    dex_as_apk = tmp_path / "classes.apk"
    dex_as_apk.write_bytes((APKS / "messenger.dex").read_bytes())
    assert scan_path(dex_as_apk, signatures=sigs).app.format == "dex"
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("base.apk", (APKS / "messenger.apk").read_bytes())
        zf.writestr("info.json", "{}")
    result = scan_path(bundle, signatures=sigs)
    assert result.app.format == "apkm"
    assert result.app.package == "com.example.messenger"


@pytest.mark.parametrize(
    ("name", "head", "entries", "fmt"),
    [
        ("x.apk", b"dex\n035\x00", [], "dex"),
        ("x.zip", b"PK\x03\x04", ["AndroidManifest.xml", "classes.dex"], "apk"),
        ("x.zip", b"PK\x03\x04", ["base/manifest/AndroidManifest.xml", "base/dex/classes.dex"], "aab"),
        ("x.xapk", b"PK\x03\x04", ["manifest.json", "a.apk"], "xapk"),
        ("x.zip", b"PK\x03\x04", ["manifest.json", "a.apk"], "xapk"),
        ("x.zip", b"PK\x03\x04", ["base.apk", "split_config.en.apk"], "apks"),
        ("x.apkm", b"PK\x03\x04", ["base.apk"], "apkm"),
    ],
)
def test_sniff_format(name: str, head: bytes, entries: list[str], fmt: str) -> None:
    assert sniff_format(name, head, entries) == fmt


def test_sniff_rejects_unknown_content() -> None:
    with pytest.raises(InputError, match=r"x\.apk: not an APK"):
        sniff_format("x.apk", b"\x7fELF\x02\x01")
