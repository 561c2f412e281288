"""PII detection in single requests: every place, encoding and pattern detector, look-alikes,
hostile bodies, masking."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import signal
import zlib
from collections.abc import Iterator
from urllib.parse import quote

import brotli
import pytest
import zstandard

from audit.models import DataFinding, HttpRequestData
from audit.traffic.encodings import decode_content, maybe_base64, value_variants
from audit.traffic.pii import PiiDetector, luhn_ok, mask, normalize_key
from audit.traffic.pii import detector as pii_detector
from audit.traffic.pii import patterns as pii_patterns
from audit.traffic.profile import DeviceProfile, GeoPoint

IMEI = "358240051111110"
AAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
MAC = "a4:5e:60:d1:22:33"
EMAIL = "jane.doe@example.org"
ANDROID_ID = "9774d56d682e549c"

PROFILE = DeviceProfile(
    android_id=ANDROID_ID,
    aaid=AAID,
    imei=IMEI,
    wifi_mac=MAC,
    phone=("+4915112345678",),
    email=(EMAIL,),
    location=GeoPoint(52.520008, 13.404954),
    mcc_mnc="26201",
    carrier="Telekom.de",
    installed_app_markers=("com.example.bankapp",),
    custom={"uid": "u-7f3a9c21e8"},
)
DET = PiiDetector(PROFILE)
BARE = PiiDetector(None)


def req(
    url: str = "https://t.example.com/c", headers: dict[str, str] | None = None, body: bytes = b""
) -> HttpRequestData:
    return HttpRequestData(url=url, headers=tuple((headers or {}).items()), body=body)


def kinds(findings: tuple[DataFinding, ...]) -> set[tuple[str, str, str, str]]:
    return {(f.data_type, f.location, f.encoding, f.confidence) for f in findings}


# ---- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (IMEI, "35•••••••••1110"),
        ("abcd", "••••"),
        ("", "•"),
        ("abcdefg", "a•••••g"),
        ("abcdefghij", "ab••••••ij"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


def test_mask_never_returns_the_whole_value() -> None:
    for n in range(1, 80):
        v = "x1" * n
        assert mask(v) != v and v not in mask(v)


def test_luhn_and_key_normalisation() -> None:
    assert luhn_ok(IMEI) and not luhn_ok("358240051111111")
    assert normalize_key("X-Android-ID") == "androidid"
    assert normalize_key("advertising_id") == "advertisingid"
    assert normalize_key("gpsAdid") == "gpsadid"


def test_value_variants_cover_encodings() -> None:
    got = dict(value_variants(MAC, separators=True))
    assert got[MAC] == "plain"
    assert got["A4:5E:60:D1:22:33"] == "upper"
    assert got["a45e60d12233"] == "no-separators"
    assert got["a4-5e-60-d1-22-33"] == "dashes"
    assert got[hashlib.md5(b"a45e60d12233").hexdigest()] == "md5"
    assert got[hashlib.sha256(MAC.upper().encode()).hexdigest().upper()] == "sha256"
    assert got[base64.urlsafe_b64encode(MAC.encode()).decode().rstrip("=")] == "base64url"
    assert got[MAC.encode().hex()] == "hex"
    assert got[quote(MAC, safe="")] == "urlencoded"


# ---- known values, every place -------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (req(f"https://t.example.com/v1/dev/{IMEI}/ping"), ("imei", "path", "plain")),
        (req(f"https://{ANDROID_ID}.t.example.com/"), ("android_id", "host", "plain")),
        (req(f"https://t.example.com/c?x={AAID.upper()}"), ("aaid", "query:x", "upper")),
        (req(f"https://t.example.com/c?{IMEI}=1"), ("imei", "query:" + IMEI, "plain")),
        (req(headers={"X-Dev": AAID.replace("-", "")}), ("aaid", "header:X-Dev", "no-separators")),
        (
            req(headers={"User-Agent": "App/1 (Telekom.de; Android 14)"}),
            ("carrier", "header:User-Agent", "plain"),
        ),
        (req(headers={"Cookie": f"a=1; e={quote(EMAIL)}"}), ("email", "cookie:e", "plain")),
        (
            req(
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=f"m={MAC.upper()}&z=1".encode(),
            ),
            ("wifi_mac", "body.form:m", "upper"),
        ),
        (
            req(
                headers={"Content-Type": "application/json"},
                body=json.dumps({"device": {"x": IMEI}}).encode(),
            ),
            ("imei", "body.json:$.device.x", "plain"),
        ),
        (
            req(body=json.dumps({"ev": [{"k": 1}, {"k": hashlib.sha1(IMEI.encode()).hexdigest()}]}).encode()),
            ("imei", "body.json:$.ev[*].k", "sha1"),
        ),
        (
            req(body=json.dumps({"s": json.dumps({"in": {"v": ANDROID_ID}})}).encode()),
            ("android_id", "body.json:$.s:$.in.v", "plain"),
        ),
        (
            req(headers={"Content-Type": "text/xml"}, body=f'<a><b id="{IMEI}"/><c>{EMAIL}</c></a>'.encode()),
            ("imei", "body.xml:/a/b/@id", "plain"),
        ),
        (
            req(headers={"Content-Type": "text/xml"}, body=f"<a><b>x</b><c>{EMAIL}</c></a>".encode()),
            ("email", "body.xml:/a/c", "plain"),
        ),
        (
            req(
                headers={"Content-Type": "text/plain"},
                body=f"device {hashlib.md5(IMEI.encode()).hexdigest().upper()}".encode(),
            ),
            ("imei", "body.text", "md5"),
        ),
        (
            req(body=b"\x08\x01\x12\x0f" + IMEI.encode() + b"\x1a\x02ok"),
            ("imei", "body.binary", "plain"),
        ),
        (
            req(body=json.dumps({"p": quote(EMAIL, safe="")}).encode()),
            ("email", "body.json:$.p", "urlencoded"),
        ),
        (
            req(body=json.dumps({"p": IMEI.encode().hex()}).encode()),
            ("imei", "body.json:$.p", "hex"),
        ),
        (
            req(body=json.dumps({"p": "26201"}).encode()),
            ("carrier", "body.json:$.p", "plain"),
        ),
        (
            req(body=json.dumps({"apps": ["com.example.bankapp", "com.other"]}).encode()),
            ("installed_apps", "body.json:$.apps[*]", "plain"),
        ),
        (req(headers={"X-U": "u-7f3a9c21e8"}), ("custom:uid", "header:X-U", "plain")),
    ],
)
def test_known_value_locations(request_: HttpRequestData, expected: tuple[str, str, str]) -> None:
    assert (*expected, "known") in kinds(DET.scan(request_))


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", lambda b: gzip.compress(b)),
        ("deflate", lambda b: zlib.compress(b)),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate
        ("br", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("", lambda b: gzip.compress(b)),  # gzip magic without a header
    ],
)
def test_content_encodings(coding: str, encode: object) -> None:
    body = json.dumps({"dev": {"imei": IMEI}}).encode()
    headers = {"Content-Type": "application/json"}
    if coding:
        headers["Content-Encoding"] = coding
    r = req(headers=headers, body=encode(body))  # type: ignore[operator]
    assert ("imei", "body.json:$.dev.imei", "plain", "known") in kinds(DET.scan(r))


def test_base64_blobs_are_decoded_and_rescanned() -> None:
    blob = base64.b64encode(
        json.dumps({"d": {"gaid": AAID, "m": hashlib.md5(ANDROID_ID.encode()).hexdigest()}}).encode()
    )
    r = req(f"https://t.example.com/c?data={quote(blob.decode())}")
    got = kinds(DET.scan(r))
    assert ("aaid", "query:data:$.d.gaid", "base64", "known") in got
    assert ("android_id", "query:data:$.d.m", "base64+md5", "known") in got
    # gzip inside base64 inside a form inside JSON
    inner = base64.urlsafe_b64encode(gzip.compress(f"imei={IMEI}&x=1".encode())).decode()
    r = req(body=json.dumps({"payload": inner}).encode())
    assert ("imei", "body.json:$.payload:imei", "base64", "known") in kinds(DET.scan(r))
    # JWT payload
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9."
        + base64.urlsafe_b64encode(json.dumps({"email": EMAIL}).encode()).decode().rstrip("=")
        + ".sig"
    )
    got = kinds(BARE.scan(req(headers={"Authorization": f"Bearer {jwt}"})))
    assert ("email", "header:Authorization:$.email", "base64", "pattern") in got


def test_multipart_parts() -> None:
    b = "XyZ"
    body = (
        f'--{b}\r\nContent-Disposition: form-data; name="imei"\r\n\r\n{IMEI}\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
        f'{{"mac": "{MAC}"}}\r\n--{b}--\r\n'
    ).encode()
    r = req(headers={"Content-Type": f'multipart/form-data; boundary="{b}"'}, body=body)
    got = kinds(DET.scan(r))
    assert ("imei", "body.multipart:imei", "plain", "known") in got
    assert ("wifi_mac", "body.multipart:meta:$.mac", "plain", "known") in got
    assert ("imei", "body.multipart:imei", "plain", "pattern") in kinds(BARE.scan(r))


def test_known_location_needs_both_coordinates_within_tolerance() -> None:
    near = req(body=json.dumps({"geo": {"a": 52.5231, "b": 13.4011}}).encode())
    assert ("location", "body.json:$.geo.a", "plain", "known") in kinds(DET.scan(near))
    far = req(body=json.dumps({"geo": {"a": 52.7, "b": 13.4011}}).encode())
    assert not any(f.data_type == "location" for f in DET.scan(far))


# ---- pattern detectors ---------------------------------------------------------------------

OTHER_IMEI = "490154203237518"


@pytest.mark.parametrize(
    ("fields", "data_type"),
    [
        ({"contact": "max.mustermann@mail.example.com"}, "email"),
        ({"imei": OTHER_IMEI}, "imei"),
        ({"x": "351756051523993"}, "imei"),  # Luhn-valid with an IMEI reporting-body prefix
        ({"m": "1c:1f:2a:58:c9:35"}, "mac"),
        ({"bt_mac": "1C-1F-2A-58-C9-35"}, "bt_mac"),
        ({"wifiMac": "1c1f2a58c935"}, "wifi_mac"),
        ({"bssid": "1c:1f:2a:58:c9:35"}, "bssid"),
        ({"gps_adid": "5b0a1e52-8d3f-4c1e-9a77-2f6b1c0d9e11"}, "aaid"),
        ({"advertisingId": "5b0a1e52-8d3f-4c1e-9a77-2f6b1c0d9e11"}, "aaid"),
        ({"oaid": "5b0a1e528d3f4c1e9a772f6b1c0d9e11aa"}, "oaid"),
        ({"lat": "48.85661", "lng": "2.35222"}, "location"),
        ({"ll": "48.8566,2.3522"}, "location"),
        ({"msisdn": "+33 6 12 34 56 78"}, "phone"),
        ({"android_id": "1a2b3c4d5e6f7a8b"}, "android_id"),
        ({"imsi": "208011234567890"}, "imsi"),
        ({"iccid": "89330123456789012345"}, "iccid"),
        ({"serialno": "ZX1G22KLMN"}, "serial"),
        ({"meid": "A0000012345678"}, "meid"),
    ],
)
def test_pattern_detectors(fields: dict[str, str], data_type: str) -> None:
    for r in (
        req("https://t.example.com/c?" + "&".join(f"{k}={quote(v)}" for k, v in fields.items())),
        req(headers={"Content-Type": "application/json"}, body=json.dumps({"d": fields}).encode()),
    ):
        found = BARE.scan(r)
        assert data_type in {f.data_type for f in found}, (fields, found)
        assert all(f.confidence == "pattern" for f in found)


@pytest.mark.parametrize(
    "fields",
    [
        {"event_id": "5b0a1e52-8d3f-4c1e-9a77-2f6b1c0d9e11"},  # UUID under a non-ad key
        {"gaid": "00000000-0000-0000-0000-000000000000"},  # limited ad tracking
        {"mac": "02:00:00:00:00:00"},  # Android's placeholder MAC
        {"m": "00:00:00:00:00:00"},
        {"order": "358240051111111"},  # not Luhn-valid
        {"invoice": "712345678901237"},  # Luhn-valid, no IMEI prefix, no IMEI key
        {"app_version": "4.12.3"},
        {"ts": "1714900000123"},
        {"ts_us": "1714900000123456"},
        {"price": "48.85661", "ratio": "2.35222"},  # coordinates-like numbers, unrelated keys
        {"lat": "48", "lng": "2"},  # not enough decimals
        {"lat": "148.12345"},  # out of range
        {"trace_id": "1a2b3c4d5e6f7a8b"},  # 16 hex, not an Android ID key
        {"aid": "1a2b3c4d5e6f7a8b"},  # "aid" is usually an app id
        {"phone_model": "Pixel 7 Pro"},
        {"serial": "unknown"},
        {"checksum": hashlib.md5(b"other").hexdigest()},
        {"score": "0.358240051111110"},
    ],
)
def test_look_alikes_are_not_reported(fields: dict[str, str]) -> None:
    r1 = req("https://t.example.com/c?" + "&".join(f"{k}={quote(v)}" for k, v in fields.items()))
    r2 = req(headers={"Content-Type": "application/json"}, body=json.dumps(fields).encode())
    assert BARE.scan(r1) == () and BARE.scan(r2) == ()
    assert DET.scan(r1) == () and DET.scan(r2) == ()


def test_imei_in_free_text_needs_context() -> None:
    assert {f.data_type for f in BARE.scan(req(body=f"device IMEI: {OTHER_IMEI}; build 7".encode()))} == {
        "imei"
    }


def test_known_values_win_over_patterns_and_findings_are_deduplicated() -> None:
    body = json.dumps({"a": [{"imei": IMEI}, {"imei": IMEI}, {"imei": IMEI}]}).encode()
    found = DET.scan(req(body=body))
    assert found == (DataFinding("imei", "body.json:$.a[*].imei", "plain", "known", mask(IMEI)),)


def test_findings_never_carry_raw_values() -> None:
    body = json.dumps({"imei": IMEI, "e": EMAIL, "m": MAC, "g": AAID, "a": ANDROID_ID}).encode()
    for det in (DET, BARE):
        found = det.scan(req(f"https://t.example.com/{IMEI}?e={EMAIL}", body=body))
        assert found
        text = json.dumps([f.to_dict() for f in found])
        for raw in (IMEI, EMAIL, MAC, AAID, ANDROID_ID, MAC.replace(":", "")):
            assert raw not in text


# ---- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "r",
    [
        req(headers={"Content-Encoding": "gzip"}, body=b"\x1f\x8b\x08\x00garbage"),
        req(headers={"Content-Encoding": "br"}, body=b"\xff" * 100),
        req(headers={"Content-Encoding": "zstd"}, body=b"\x28\xb5\x2f\xfd" + b"\x00" * 20),
        req(headers={"Content-Encoding": "compress"}, body=b"\x1f\x9d..."),
        req(headers={"Content-Type": "application/json"}, body=b"[" * 200_000),
        req(headers={"Content-Type": "application/json"}, body=b'{"a": ' * 50_000),
        req(headers={"Content-Type": "text/xml"}, body=b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'),
        req(headers={"Content-Type": "text/xml"}, body=b"<a><b></a>"),
        req(headers={"Content-Type": "multipart/form-data; boundary=zz"}, body=b"--zz\r\nno headers end"),
        req(headers={"Content-Type": "multipart/form-data"}, body=b"--zz--"),
        req("http://[::1"),
        req("https://t.example.com/%zz?%%=%&a=%ff"),
        req(body=b"\x00\x01\x02" * 100_000),
        req(body=("a@" * 200_000).encode()),
        req(body=("1c:" * 200_000).encode()),
        req(body=("A" * 500_000).encode()),
        req(headers={"Cookie": ";;;=;=="}),
    ],
)
def test_hostile_bodies_do_not_raise(r: HttpRequestData) -> None:
    for det in (DET, BARE):
        assert isinstance(det.scan(r), tuple)


def test_decompression_is_capped() -> None:
    bomb = gzip.compress(b"\x00" * (20 * 1024 * 1024))
    assert len(decode_content(bomb, "gzip", cap=1024 * 1024)) == 1024 * 1024
    bomb = brotli.compress(b"a" * (20 * 1024 * 1024))
    assert len(decode_content(bomb, "br", cap=1024 * 1024)) <= 1024 * 1024


def test_maybe_base64_rejects_hex_binary_and_short_tokens() -> None:
    assert maybe_base64(hashlib.md5(b"x").hexdigest()) is None
    assert maybe_base64(base64.b64encode(bytes(range(40))).decode()) is None
    assert maybe_base64("aGVsbG8=") is None
    assert (
        maybe_base64(base64.b64encode(b"hello world, this is text").decode()) == "hello world, this is text"
    )


# ---- the prefilter ---------------------------------------------------------------------------


def _slow(det: PiiDetector) -> PiiDetector:
    """The same detector with the RE2 prefilter switched off (the pure-Python fallback)."""
    clone = PiiDetector(det.profile)
    clone._trigger = None
    return clone


@pytest.mark.parametrize("det", [DET, BARE], ids=["profile", "no-profile"])
def test_prefilter_gives_the_same_answers_as_the_fallback(det: PiiDetector) -> None:
    from tests.helpers.pii_corpus import generate

    slow = _slow(det)
    for lab in generate(n=200):
        assert det.scan(lab.req) == slow.scan(lab.req), lab.desc


def test_prefilter_skips_uninteresting_bodies_but_not_telling_ones() -> None:
    plain = json.dumps({"events": [{"name": "open", "ts": 1714900000123, "v": "4.2.1"}] * 50})
    assert not BARE.interesting(plain)
    assert BARE.interesting(plain.replace('"v"', '"androidId"'))
    assert BARE.interesting(plain.replace('"v"', '"Android-ID"'))
    assert BARE.interesting(plain.replace('"v"', '\\"gps_adid\\"'))
    assert BARE.interesting(plain + "x@y.example")
    assert DET.interesting(plain + hashlib.sha256(IMEI.encode()).hexdigest())
    assert not BARE.interesting(plain + hashlib.sha256(IMEI.encode()).hexdigest())


# ---- found by fuzzing (benchmarks/fuzz_import.py) --------------------------------------------


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging the suite (these inputs once took minutes to years)."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_form_shaped_body_does_not_backtrack() -> None:
    """The form test's ambiguous "key{1,256} =? value*" pairs backtracked exponentially when the
    match failed at the end: 40 pairs of 20 letters would have taken 20^40 steps."""
    body = ("a@b.example=1&" + "&".join(["a" * 20] * 40) + "&=").encode()
    with _deadline(10):
        got = kinds(BARE.scan(req(body=body)))
    assert ("email", "body.text", "plain", "pattern") in got
    # still a form when it is one, including pairs without "=" and values with "="
    form = f"e={EMAIL}&flag&x=a=b&".encode()
    assert ("email", "body.form:e", "plain", "known") in kinds(DET.scan(req(body=form)))


def test_nested_base64_gzip_bombs_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """base64(gzip(64 tokens of base64(gzip(8 MiB of text)))): each token was decoded up to the 8 MiB
    cap and its text rescanned, so a 3 KB body kept the detector busy for 17 s (64 KB: minutes)."""
    inner = f"imei={IMEI} a@b.example ".encode() * (pii_detector.MAX_DECODED // 34)
    tok1 = base64.b64encode(gzip.compress(inner, 9)).decode()
    tok2 = base64.b64encode(gzip.compress(" ".join([tok1] * 64).encode(), 9)).decode()
    body = json.dumps({"d": [tok2] * 20}).encode()
    assert len(body) < 70_000
    decoded: list[int] = []
    real = pii_detector.base64_text

    def counting(token: str, cap: int = pii_detector.MAX_DECODED) -> tuple[str | None, int]:
        text, n = real(token, cap)
        decoded.append(n)
        return text, n

    monkeypatch.setattr(pii_detector, "base64_text", counting)
    with _deadline(10):
        got = kinds(DET.scan(req(headers={"Content-Type": "application/json"}, body=body)))
    assert ("imei", "body.json:$.d[*]", "base64+base64", "known") in got  # the first ones are read
    assert sum(decoded) <= pii_detector.MAX_DECODED_PER_REQUEST + pii_detector.MAX_DECODED


def test_dense_field_stops_at_the_first_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field of 10 000 IMEIs ran the Luhn check 10 000 times for one finding (50 000 in a megabyte)."""
    calls: list[str] = []
    real = pii_patterns.luhn_ok
    monkeypatch.setattr(pii_patterns, "luhn_ok", lambda d: calls.append(d) or real(d))
    value = f"imei={OTHER_IMEI} " * 10_000 + f"mail {EMAIL} " * 10_000 + f"mac {MAC} " * 10_000
    got = kinds(
        BARE.scan(req(headers={"Content-Type": "application/json"}, body=json.dumps({"v": value}).encode()))
    )
    assert got == {
        ("imei", "body.json:$.v", "plain", "pattern"),
        ("email", "body.json:$.v", "plain", "pattern"),
        ("mac", "body.json:$.v", "plain", "pattern"),
    }
    assert len(calls) < 10
    # a profile value repeated before another one: the other is still found
    value = f"imei={IMEI} " * 1000 + f"imei={OTHER_IMEI}"
    assert ("imei", "body.text", "plain", "known") in kinds(DET.scan(req(body=value.encode())))


def _memo_requests() -> list[HttpRequestData]:
    """Requests whose fields repeat (the labelled sets twice, shuffled), and fields whose outcome a
    memory must not replay: base64 tokens near the end of the decode budget, coordinates."""
    from tests.helpers.pii_corpus import generate, generate_held_out

    labelled = [lab.req for lab in generate()] + [lab.req for lab in generate_held_out()]
    blob = base64.b64encode(bytes(range(200, 212))).decode()  # decodes, not to text: takes 12 bytes
    text = base64.b64encode(json.dumps({"imei": IMEI, "mail": EMAIL}).encode()).decode()
    bomb = base64.b64encode(gzip.compress(b"\0" * pii_detector.MAX_DECODED, 9)).decode()
    # Not text whole (the last byte), but text when cut by a budget that 1,000 bytes are left of.
    mails = base64.b64encode(gzip.compress(f"{EMAIL} ".encode() * 200 + b"\xff")).decode()
    most = base64.b64encode(gzip.compress(b"\0" * (pii_detector.MAX_DECODED - 1000), 9)).decode()
    edge = [
        HttpRequestData(url="https://a.example/x", headers=(("X-Blob", blob), ("X-Text", text))),
        HttpRequestData(
            url="https://a.example/x", headers=(("X-Bomb", bomb), ("X-Blob", blob), ("X-Text", text))
        ),
        HttpRequestData(url="https://a.example/x", headers=(("X-Mails", mails),)),
        HttpRequestData(url="https://a.example/x", headers=(("X-Most", most), ("X-Mails", mails))),
        HttpRequestData(url="https://a.example/x?lat=52.52001&lng=13.40496", headers=(("X-Blob", blob),)),
        HttpRequestData(url="https://a.example/x?lat=52.52001&lng=2.0", headers=(("X-Blob", blob),)),
        HttpRequestData(url=f"https://a.example/{IMEI}?adid={AAID}", headers=(("Cookie", f"m={EMAIL}"),)),
    ]
    out = labelled + edge + edge + labelled
    import random

    random.Random(7).shuffle(out)
    return out + edge


@pytest.mark.parametrize("profile", [None, PROFILE], ids=["patterns", "profile"])
def test_remembered_fields_give_the_same_findings(
    profile: DeviceProfile | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The detector remembers what a field of a request gave (issue 15: a big HAR repeats header
    # values): scanned with that memory, every request has exactly the findings of a scan without.
    requests = _memo_requests()
    remembering = PiiDetector(profile)
    with_memory = [remembering.scan(r) for r in requests]
    assert remembering._field_memo, "nothing was remembered"
    monkeypatch.setattr(pii_detector, "_MEMO_VALUE_LEN", -1)  # every field scanned afresh
    fresh = PiiDetector(profile)
    assert [fresh.scan(r) for r in requests] == with_memory
    assert not fresh._field_memo
