"""Who signed the app (``app.signers``): v1/v2/v3 certificates of the signed fixtures, agreement with
androguard's parser, unsigned inputs, bundles, and hostile signing data."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

import pytest

from audit.models import ScanResult, Signer
from audit.static.scanner import scan_path
from audit.static.signing import merge_signers, v1_certificates
from tests.fixtures import sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIGNED = FIXTURES / "signed"
DEVELOPER = hashlib.sha256(
    sign.signer("developer")[1].public_bytes(sign.serialization.Encoding.DER)
).hexdigest()
STORE = hashlib.sha256(sign.signer("store")[1].public_bytes(sign.serialization.Encoding.DER)).hexdigest()


@pytest.mark.parametrize(
    ("fixture", "fingerprint", "schemes"),
    [
        ("messenger-signed.apk", DEVELOPER, ("v1", "v2", "v3")),
        ("messenger-resigned.apk", STORE, ("v1", "v2")),
        ("multidex-v1.apk", DEVELOPER, ("v1",)),
        ("obfuscated-v2.apk", STORE, ("v2",)),
    ],
)
def test_signers_of_signed_fixtures(fixture: str, fingerprint: str, schemes: tuple[str, ...]) -> None:
    r = scan_path(SIGNED / fixture)
    assert r.errors == ()
    assert [s.sha256 for s in r.app.signers] == [fingerprint]
    s = r.app.signers[0]
    assert s.schemes == schemes
    assert s.key == "RSA 2048"
    assert (s.not_before, s.not_after) == ("2024-01-01T00:00:00Z", "2054-01-01T00:00:00Z")
    assert s.subject == s.issuer  # self-signed, as nearly every app signing certificate
    if fingerprint == DEVELOPER:
        assert (
            s.subject == "CN=Example Messenger Developer,O=Example Messenger Ltd,C=DE" and s.serial == "1001"
        )
    else:
        assert s.subject == "CN=Third-Party Store Re-signer,O=Example App Store,C=CN" and s.serial == "2002"


def test_resigned_copy_is_the_same_app_with_another_signer() -> None:
    a, b = scan_path(SIGNED / "messenger-signed.apk"), scan_path(SIGNED / "messenger-resigned.apk")
    assert a.app.package == b.app.package and a.app.sha256 != b.app.sha256
    assert {e.value for e in a.endpoints} == {e.value for e in b.endpoints}
    assert a.app.signers[0].sha256 != b.app.signers[0].sha256


@pytest.mark.parametrize(
    "fixture", ["messenger-signed.apk", "messenger-resigned.apk", "multidex-v1.apk", "obfuscated-v2.apk"]
)
def test_agrees_with_androguard(fixture: str) -> None:
    """Our bounded reader of the signing block finds what androguard's finds; androguard also
    verifies the v1 PKCS#7 signature over CERT.SF (so the fixture signer is right)."""
    from androguard.core.apk import APK
    from loguru import logger

    logger.remove()
    path = SIGNED / fixture
    ours = {s.sha256: set(s.schemes) for s in scan_path(path).app.signers}
    apk = APK(str(path), skip_analysis=True)
    theirs: dict[str, set[str]] = {}
    for scheme, certs in (
        ("v1", [c.dump() for c in apk.get_certificates_v1()]),
        ("v2", apk.get_certificates_der_v2()),
        ("v3", apk.get_certificates_der_v3()),
    ):
        for der in certs:
            theirs.setdefault(hashlib.sha256(der).hexdigest(), set()).add(scheme)
    assert ours == theirs


@pytest.mark.parametrize(
    "fixture", ["apks/messenger.apk", "apks/messenger.aab", "apks/messenger.apks", "apks/messenger.dex"]
)
def test_unsigned_inputs_have_no_signers(fixture: str) -> None:
    r = scan_path(FIXTURES / fixture)
    assert r.app.signers == ()
    assert r.to_dict()["app"]["signers"] == []


def test_round_trip_through_json() -> None:
    r = scan_path(SIGNED / "messenger-signed.apk")
    back = ScanResult.from_dict(r.to_dict())
    assert back == r
    assert isinstance(back.app.signers[0], Signer)
    d = r.to_dict()["app"]["signers"][0]
    assert set(d) == {"sha256", "schemes", "subject", "issuer", "serial", "not_before", "not_after", "key"}
    assert d["schemes"] == ["v1", "v2", "v3"]


def test_old_results_without_signers_still_load() -> None:
    d = scan_path(FIXTURES / "apks" / "messenger.apk").to_dict()
    del d["app"]["signers"]
    assert ScanResult.from_dict(d).app.signers == ()


def test_split_bundle_lists_the_signers_of_its_apks(tmp_path: Path) -> None:
    base = SIGNED / "messenger-signed.apk"
    split = sign.sign_apk(FIXTURES / "apks" / "obfuscated.apk", tmp_path / "split.apk", "developer", ("v2",))
    bundle = tmp_path / "app.apks"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("base.apk", base.read_bytes())
        z.writestr("split_config.arm64_v8a.apk", split.read_bytes())
    r = scan_path(bundle)
    assert [(s.sha256, s.schemes) for s in r.app.signers] == [(DEVELOPER, ("v1", "v2", "v3"))]


def test_merge_signers_unions_schemes() -> None:
    s = scan_path(SIGNED / "multidex-v1.apk").app.signers[0]
    t = Signer(**{**s.to_dict(), "schemes": ("v3",)})
    assert merge_signers([[s], [t]]) == (Signer(**{**s.to_dict(), "schemes": ("v1", "v3")}),)


def test_v1_chain_picks_the_signer_certificate() -> None:
    key, cert = sign.signer("developer")
    _, other = sign.signer("store")
    p7 = (
        sign.pkcs7.PKCS7SignatureBuilder()
        .set_data(b"Signature-Version: 1.0\r\n\r\n")
        .add_signer(cert, key, sign.hashes.SHA256())
        .add_certificate(other)
        .sign(sign.serialization.Encoding.DER, [sign.pkcs7.PKCS7Options.DetachedSignature])
    )
    assert [hashlib.sha256(d).hexdigest() for d in v1_certificates(p7)] == [DEVELOPER]


# -- hostile signing data ----------------------------------------------------------------------


def test_broken_v2_signer_is_a_note_and_the_rest_is_read() -> None:
    r = scan_path(SIGNED / "bad-signing-block.apk")
    assert [(s.sha256, s.schemes) for s in r.app.signers] == [(DEVELOPER, ("v1", "v3"))]
    assert len(r.errors) == 1 and r.errors[0].startswith("v2 signature cannot be read (")
    assert {e.value for e in r.endpoints} == {
        e.value for e in scan_path(SIGNED / "messenger-signed.apk").endpoints
    }


def _block_footer(data: bytes) -> int:
    return data.rfind(sign.MAGIC) - 8


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0x7FFF_FFFF_FFFF, "does not fit before the central directory"),
        (8, "does not fit before the central directory"),
        (100, "sizes at its start and end differ"),
    ],
)
def test_hostile_block_sizes(tmp_path: Path, size: int, expected: str) -> None:
    data = bytearray((SIGNED / "messenger-signed.apk").read_bytes())
    struct.pack_into("<Q", data, _block_footer(bytes(data)), size)
    path = tmp_path / "hostile.apk"
    path.write_bytes(bytes(data))
    r = scan_path(path)
    assert [s.schemes for s in r.app.signers] == [("v1",)]
    assert any("APK Signing Block cannot be read" in e and expected in e for e in r.errors), r.errors


def test_block_larger_than_the_cap_is_not_read(tmp_path: Path) -> None:
    """A 40 MiB block (a padding pair) is declared and present, but not read: a note."""
    pad = struct.pack("<QI", (40 << 20) + 4, 0x42726577) + bytes(40 << 20)
    path = tmp_path / "big-block.apk"
    path.write_bytes(sign.insert_block((FIXTURES / "apks" / "messenger.apk").read_bytes(), pad))
    r = scan_path(path)
    assert any("MiB, more than the 32 MiB read" in e for e in r.errors), r.errors


def test_garbage_certificate_keeps_its_fingerprint(tmp_path: Path) -> None:
    """A v2 signer whose "certificate" is not X.509: listed by fingerprint, with a note."""
    junk = b"\x30\x03\x02\x01\x00"
    signed_data = sign._seq([]) + sign._seq([junk]) + sign._lp(b"")
    value = sign._seq([sign._lp(signed_data) + sign._seq([]) + sign._lp(b"")])
    pair = struct.pack("<QI", len(value) + 4, sign.V2_ID) + value
    path = tmp_path / "junk-cert.apk"
    path.write_bytes(sign.insert_block((FIXTURES / "apks" / "obfuscated.apk").read_bytes(), pair))
    r = scan_path(path)
    assert [(s.sha256, s.subject) for s in r.app.signers] == [(hashlib.sha256(junk).hexdigest(), "")]
    assert any("cannot be decoded" in e for e in r.errors)


def test_v1_signature_that_is_not_pkcs7(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(FIXTURES / "apks" / "obfuscated.apk") as src, zipfile.ZipFile(buf, "w") as z:
        for info in src.infolist():
            z.writestr(info, src.read(info))
        z.writestr("META-INF/CERT.SF", "Signature-Version: 1.0\r\n\r\n")
        z.writestr("META-INF/CERT.RSA", "<script>alert(1)</script>")
        z.writestr("META-INF/LONE.RSA", "no .SF beside it: ignored, as Android does")
    path = tmp_path / "bad-v1.apk"
    path.write_bytes(buf.getvalue())
    r = scan_path(path)
    assert r.app.signers == ()
    assert [e for e in r.errors if "signature" in e] == [
        e for e in r.errors if e.startswith("META-INF/CERT.RSA: signature cannot be read")
    ]
    assert len([e for e in r.errors if "signature" in e]) == 1
