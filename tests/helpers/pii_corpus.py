"""Synthetic labelled traffic for measuring the PII detectors, and the precision/recall helper.

``generate()`` builds a deterministic set of requests (fixed seed) mixing every data type, encoding
and place in a request, plus look-alike negatives; each request carries the set of data types a
correct detector reports for it. ``write_har``/``read_har`` and ``write_flows``/``read_flows``
round-trip the set through a HAR file and a mitmproxy flow file, the two forms the importers see.

Run as a script to print the precision/recall table used in docs/pii.md::

    .venv/bin/python -m tests.helpers.pii_corpus
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import brotli
import zstandard

from audit.models import NOT_PERSONAL_DATA, DataFinding, HttpRequestData
from audit.traffic.profile import DeviceProfile, GeoPoint

SEED = 20240505

#: The device every "known" value belongs to.
PROFILE = DeviceProfile(
    android_id="9774d56d682e549c",
    aaid="38400000-8cf0-11bd-b23e-10b96e40000d",
    oaid="d1f5e2a0-33b4-4c6e-9f7a-5b2c8e1d0a77",
    imei="358240051111110",
    imei2="490154203237518",
    serial="R58M12ABCDE",
    wifi_mac="a4:5e:60:d1:22:33",
    bt_mac="a4:5e:60:d1:22:34",
    phone=("+4915112345678", "015112345678"),
    email=("jane.doe@example.org",),
    accounts=("janedoe1987",),
    location=GeoPoint(52.520008, 13.404954, 1000.0),
    mcc_mnc="26201",
    carrier="Telekom.de",
    iccid="8949226000012345678",
    imsi="262011234567890",
    installed_app_markers=("com.example.bankapp", "org.example.datingapp"),
    custom={"user_id": "u-7f3a9c21e8"},
)

# data type → the profile value it is matched against
KNOWN: dict[str, str] = {
    "android_id": "9774d56d682e549c",
    "aaid": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "oaid": "d1f5e2a0-33b4-4c6e-9f7a-5b2c8e1d0a77",
    "imei": "358240051111110",
    "serial": "R58M12ABCDE",
    "wifi_mac": "a4:5e:60:d1:22:33",
    "bt_mac": "a4:5e:60:d1:22:34",
    "phone": "+4915112345678",
    "email": "jane.doe@example.org",
    "account": "janedoe1987",
    "iccid": "8949226000012345678",
    "imsi": "262011234567890",
    "installed_apps": "com.example.bankapp",
    "custom:user_id": "u-7f3a9c21e8",
}
SEPARATED = {"aaid", "oaid", "wifi_mac", "bt_mac", "phone"}

#: Neutral keys (known values must be found whatever the key) and telling keys per type.
NEUTRAL_KEYS = ("v", "d1", "payload_x", "k7", "val", "p")
TELLING_KEYS: dict[str, tuple[str, ...]] = {
    "android_id": ("android_id", "androidId", "X-Android-ID"),
    "aaid": ("gaid", "adid", "advertising_id", "google_aid", "gps_adid"),
    "oaid": ("oaid",),
    "imei": ("imei", "device_imei"),
    "serial": ("serial", "serialno"),
    "wifi_mac": ("mac", "wifi_mac", "macAddress"),
    "bt_mac": ("bt_mac", "bluetooth_mac"),
    "phone": ("phone", "msisdn", "phone_number"),
    "email": ("email", "user_email", "login"),
    "iccid": ("iccid", "sim_serial"),
    "imsi": ("imsi", "subscriber_id"),
}

PLACES = (
    "path", "query", "header", "cookie", "form", "json", "json_nested_string", "xml", "multipart",
    "gzip_json", "deflate_form", "brotli_json", "zstd_json", "base64_json_blob", "base64_form_blob",
    "protobuf", "text",
)  # fmt: skip


@dataclass
class Labelled:
    """One synthetic request and what a correct detector reports for it."""

    req: HttpRequestData
    known: set[str] = field(default_factory=set)
    """Data types carried as values of the device profile (found with the profile)."""
    pattern: set[str] = field(default_factory=set)
    """Data types carried as other values, detectable by patterns alone."""
    desc: list[str] = field(default_factory=list)
    venue: bool = False
    """The pattern ``location`` it carries is coordinates far from the device (a venue, a search
    centre): with a profile location a correct detector reports them as ``coordinates``."""

    @property
    def labels(self) -> set[str]:
        return self.known | self.pattern

    def expected(self, located: bool) -> tuple[set[str], set[str]]:
        """(known, pattern) labels for a detector with (``located``) or without a profile location."""
        if located and self.venue:
            return self.known, (self.pattern - {"location"}) | {"coordinates"}
        return self.known, self.pattern


# ---------------------------------------------------------------------------------------------
# Value rendering
# ---------------------------------------------------------------------------------------------


def _b64(s: str, url: bool = False, pad: bool = True) -> str:
    raw = s.encode()
    out = (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()
    return out if pad else out.rstrip("=")


def _hash(algo: str, s: str, upper: bool = False) -> str:
    h = hashlib.new(algo, s.encode()).hexdigest()
    return h.upper() if upper else h


def encodings_for(data_type: str) -> list[str]:
    encs = [
        "plain",
        "upper",
        "lower",
        "urlencoded",
        "base64",
        "base64url",
        "base64-nopad",
        "hex",
        "md5",
        "sha1",
    ]
    encs += ["sha256", "md5-upper", "sha256-lower-of-upper"]
    if data_type in SEPARATED:
        encs += ["no-separators", "no-separators-upper", "md5-no-separators"]
    return encs


def render(value: str, enc: str) -> str:
    bare = "".join(ch for ch in value if ch not in ":-. ()")
    table: dict[str, Callable[[], str]] = {
        "plain": lambda: value,
        "upper": lambda: value.upper(),
        "lower": lambda: value.lower(),
        "urlencoded": lambda: quote(value, safe=""),
        "base64": lambda: _b64(value),
        "base64url": lambda: _b64(value, url=True, pad=False),
        "base64-nopad": lambda: _b64(value, pad=False),
        "hex": lambda: value.encode().hex(),
        "md5": lambda: _hash("md5", value),
        "sha1": lambda: _hash("sha1", value),
        "sha256": lambda: _hash("sha256", value),
        "md5-upper": lambda: _hash("md5", value, upper=True),
        "sha256-lower-of-upper": lambda: _hash("sha256", value.upper()),
        "no-separators": lambda: bare.lower(),
        "no-separators-upper": lambda: bare.upper(),
        "md5-no-separators": lambda: _hash("md5", bare.lower()),
    }
    return table[enc]()


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _hexs(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n))


def _uuid(rnd: random.Random) -> str:
    h = _hexs(rnd, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def pattern_value(data_type: str, rnd: random.Random) -> str:
    """A value of ``data_type`` that is not the profile's (pattern detection only)."""
    if data_type == "email":
        return f"{rnd.choice(['max', 'lena', 'a.b', 'kim_lee'])}{rnd.randint(1, 999)}@{rnd.choice(['mail.example.com', 'example.net'])}"
    if data_type == "imei":
        body = rnd.choice(["35", "86", "01"]) + "".join(str(rnd.randint(0, 9)) for _ in range(12))
        return body + _luhn_digit(body)
    if data_type in ("wifi_mac", "bt_mac"):
        return ":".join(_hexs(rnd, 2) for _ in range(6)).replace("00:", "1c:")
    if data_type in ("aaid", "oaid"):
        return _uuid(rnd)
    if data_type == "android_id":
        return _hexs(rnd, 16)
    if data_type == "phone":
        return "+33" + str(rnd.randint(600000000, 699999999))
    if data_type == "iccid":
        return "8933" + "".join(str(rnd.randint(0, 9)) for _ in range(15))
    if data_type == "imsi":
        return "208" + "".join(str(rnd.randint(0, 9)) for _ in range(12))
    if data_type == "serial":
        return "".join(rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10)) + "7"
    raise ValueError(data_type)


def noise_fields(rnd: random.Random) -> list[tuple[str, str]]:
    """Look-alikes that are not personal data: a correct detector reports none of them."""
    non_luhn_body = "35" + "".join(str(rnd.randint(0, 9)) for _ in range(12))
    wrong = str((int(_luhn_digit(non_luhn_body)) + rnd.randint(1, 9)) % 10)
    other_body = "7" + "".join(str(rnd.randint(0, 9)) for _ in range(13))  # Luhn-valid, no IMEI prefix
    luhn_other = other_body + _luhn_digit(other_body)
    pool = [
        ("event_id", _uuid(rnd)),
        ("request_id", _uuid(rnd)),
        ("session", _hexs(rnd, 32)),
        ("trace_id", _hexs(rnd, 16)),
        ("span", _hexs(rnd, 16)),
        ("app_version", f"{rnd.randint(1, 9)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}"),
        ("sdk_version", f"{rnd.randint(10, 22)}.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}"),
        ("ts", str(1_700_000_000_000 + rnd.randint(0, 10**9))),
        ("ts_us", str(1_700_000_000_000_000 + rnd.randint(0, 10**12))),
        ("order_id", non_luhn_body + wrong),
        ("checksum", _hash("md5", f"other-{rnd.random()}")),
        ("sig", _hash("sha256", f"payload-{rnd.random()}")),
        ("price", f"{rnd.uniform(1, 90):.4f}"),
        ("ratio", f"{rnd.uniform(-150, 150):.6f}"),
        ("score", repr(rnd.random())),
        ("build", "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))),
        ("mac_placeholder", "02:00:00:00:00:00"),
        ("adid_limited", "00000000-0000-0000-0000-000000000000"),
        ("locale", rnd.choice(["en_US", "de_DE", "fr_FR"])),
        ("screen", f"{rnd.choice([1080, 1440, 720])}x{rnd.choice([1920, 2400, 1280])}"),
        ("token", base64.urlsafe_b64encode(bytes(rnd.getrandbits(8) for _ in range(24))).decode()),
        ("blob", base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(30))).decode()),
        ("uuid", _uuid(rnd)),
        ("install_id", _hexs(rnd, 16)),
        ("phone_model", rnd.choice(["Pixel 7 Pro", "SM-G991B", "moto g84"])),
        ("location_id", str(rnd.randint(10**7, 10**8))),
        ("geo_country", rnd.choice(["DE", "FR", "US"])),
        ("mac_os_version", f"14.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}"),
        ("invoice", luhn_other),
    ]
    rnd.shuffle(pool)
    return pool[: rnd.randint(5, 11)]


# ---------------------------------------------------------------------------------------------
# Placement: fields → request
# ---------------------------------------------------------------------------------------------

Fields = list[tuple[str, str]]


def _pb_string(tag: int, s: str) -> bytes:
    b = s.encode()
    return (
        bytes([(tag << 3) | 2, len(b)]) + b
        if len(b) < 128
        else bytes([(tag << 3) | 2, 0x80 | (len(b) & 0x7F), len(b) >> 7]) + b
    )


def _xml(fields: Fields) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields)
    return f'<?xml version="1.0"?><event type="open"><device>{inner}</device></event>'


def place(fields: Fields, where: str, rnd: random.Random, host: str) -> HttpRequestData:
    """Build a request carrying ``fields`` (key, value) at ``where``."""
    url = f"https://{host}/v2/collect"
    ua = ("User-Agent", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A)")
    headers: list[tuple[str, str]] = [ua, ("Accept", "*/*")]
    body = b""
    if where == "path":
        url = f"https://{host}/v1/" + "/".join(f"{k}/{quote(v, safe='')}" for k, v in fields)
    elif where == "query":
        url += "?" + urlencode(fields)
    elif where == "header":
        headers += [(k if k.lower().startswith("x-") else f"X-{k.replace('_', '-')}", v) for k, v in fields]
    elif where == "cookie":
        headers.append(("Cookie", "; ".join(f"{k}={quote(v, safe='')}" for k, v in fields)))
    elif where == "form":
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = urlencode(fields).encode()
    elif where == "json":
        headers.append(("Content-Type", "application/json; charset=utf-8"))
        body = json.dumps({"events": [{"name": "open", "params": dict(fields)}], "v": 2}).encode()
    elif where == "json_nested_string":
        headers.append(("Content-Type", "application/json"))
        body = json.dumps({"batch": json.dumps({"device": dict(fields)})}).encode()
    elif where == "xml":
        headers.append(("Content-Type", "text/xml"))
        body = _xml(fields).encode()
    elif where == "multipart":
        b = f"----b{rnd.randint(10**8, 10**9)}"
        headers.append(("Content-Type", f"multipart/form-data; boundary={b}"))
        parts = [
            f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields[:-1]
        ]
        parts.append(
            f'--{b}\r\nContent-Disposition: form-data; name="meta"; filename="meta.json"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(dict(fields[-1:]))}\r\n"
        )
        body = ("".join(parts) + f"--{b}--\r\n").encode()
    elif where in ("gzip_json", "brotli_json", "zstd_json"):
        raw = json.dumps({"device": dict(fields), "sdk": "x"}).encode()
        headers.append(("Content-Type", "application/json"))
        coding = {"gzip_json": "gzip", "brotli_json": "br", "zstd_json": "zstd"}[where]
        headers.append(("Content-Encoding", coding))
        if coding == "gzip":
            body = gzip.compress(raw, mtime=0)
        elif coding == "br":
            body = brotli.compress(raw)
        else:
            body = zstandard.ZstdCompressor().compress(raw)
    elif where == "deflate_form":
        headers += [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "deflate")]
        body = zlib.compress(urlencode(fields).encode())
    elif where == "base64_json_blob":
        blob = base64.b64encode(json.dumps(dict(fields)).encode()).decode()
        url += "?" + urlencode({"d": blob, "v": "3"})
    elif where == "base64_form_blob":
        blob = base64.urlsafe_b64encode(urlencode(fields).encode()).decode()
        headers.append(("Content-Type", "application/json"))
        body = json.dumps({"payload": blob, "enc": "b64"}).encode()
    elif where == "protobuf":
        headers.append(("Content-Type", "application/x-protobuf"))
        body = (
            b"\x08\x96\x01" + b"".join(_pb_string(i + 2, v) for i, (_, v) in enumerate(fields)) + b"\x10\x01"
        )
    elif where == "text":
        headers.append(("Content-Type", "text/plain"))
        body = "\n".join(f"{k}: {v}" for k, v in fields).encode()
    else:
        raise ValueError(where)
    return HttpRequestData(url=url, headers=tuple(headers), body=body)


# Encodings that are meaningless or invisible in some places are not generated there.
_KEYLESS_PLACES = {"protobuf", "text"}


def _place_ok(where: str, data_type: str, enc: str, pattern: bool) -> bool:
    if pattern and where in _KEYLESS_PLACES:
        # Key-based detectors need a key; standalone ones (e-mail, MAC, IMEI) still work in text.
        return data_type in ("email", "wifi_mac", "bt_mac")
    if pattern and where == "path":
        return data_type in ("email", "wifi_mac", "bt_mac", "imei")
    return True


def _unique_keys(fields: Fields) -> Fields:
    """JSON objects and multipart names hold a key once: rename repeats (``k7`` → ``k7_2``)."""
    seen: dict[str, int] = {}
    out: Fields = []
    for k, v in fields:
        seen[k] = seen.get(k, 0) + 1
        out.append((k if seen[k] == 1 else f"{k}_{seen[k]}", v))
    return out


HOSTS = (
    "app-measurement.example.com",
    "api.tracker.example.net",
    "sdk.ads.example.org",
    "collect.example.cn",
)


def generate(seed: int = SEED, n: int = 600) -> list[Labelled]:
    """The labelled set: about 60 % requests with known values, 20 % with pattern-only values,
    20 % look-alike negatives only; every request also carries look-alike noise."""
    rnd = random.Random(seed)
    out: list[Labelled] = []
    known_types = sorted(KNOWN) + ["location"]
    pattern_types = sorted(TELLING_KEYS) + ["location"]
    for i in range(n):
        where = PLACES[i % len(PLACES)]
        lab = Labelled(req=HttpRequestData(url=""))
        fields: Fields = []
        kind = i % 5
        if kind in (0, 1, 2):  # known values
            for _ in range(rnd.randint(1, 3)):
                t = rnd.choice(known_types)
                if t == "location":
                    lat = PROFILE.location.lat + rnd.uniform(-0.004, 0.004)  # type: ignore[union-attr]
                    lon = PROFILE.location.lon + rnd.uniform(-0.004, 0.004)  # type: ignore[union-attr]
                    fields += [("lat", f"{lat:.5f}"), ("lng", f"{lon:.5f}")]
                    lab.known.add("location")
                    lab.desc.append("known location")
                    continue
                enc = rnd.choice(encodings_for(t))
                if t in ("installed_apps", "account") and enc not in (
                    "plain",
                    "urlencoded",
                    "base64",
                    "md5",
                    "sha256",
                ):
                    enc = "plain"
                if (
                    where in ("query", "form", "deflate_form", "base64_form_blob", "path")
                    and enc == "urlencoded"
                ):
                    enc = "plain"  # URL-encoding is the transport there, not an app's obfuscation
                key = rnd.choice(NEUTRAL_KEYS + TELLING_KEYS.get(t, ()))
                fields.append((key, render(KNOWN[t], enc)))
                lab.known.add(t)
                lab.desc.append(f"known {t} {enc} under {key}")
        elif kind == 3:  # values not in the profile: pattern detectors only
            for _ in range(rnd.randint(1, 2)):
                t = rnd.choice(pattern_types)
                if t == "location":
                    if not _place_ok(where, "aaid", "plain", True):
                        continue
                    fields += [
                        ("latitude", f"{rnd.uniform(-60, 60):.6f}"),
                        ("longitude", f"{rnd.uniform(-170, 170):.6f}"),
                    ]
                    lab.pattern.add("location")
                    lab.venue = True  # random: far from the profile's location
                    lab.desc.append("pattern location")
                    continue
                if not _place_ok(where, t, "plain", True):
                    t = "email"
                key = rnd.choice(TELLING_KEYS[t])
                fields.append((key, pattern_value(t, rnd)))
                lab.pattern.add(t)
                lab.desc.append(f"pattern {t} under {key}")
        fields += noise_fields(rnd)
        fields = _unique_keys(fields)
        rnd.shuffle(fields)
        host = HOSTS[i % len(HOSTS)]
        lab.req = place(fields, where, rnd, host)
        lab.desc.insert(0, where)
        out.append(lab)
    return out


# ---------------------------------------------------------------------------------------------
# Held-out set: coordinates that are not the device's (issue 12 point 10)
# ---------------------------------------------------------------------------------------------

#: Seed of the held-out set: not the seed the detectors were tuned on.
HELD_OUT_SEED = 20261203
#: Places where map, ride and weather APIs put coordinates.
HELD_OUT_PLACES = (
    "query",
    "form",
    "json",
    "json_nested_string",
    "gzip_json",
    "multipart",
    "base64_json_blob",
    "xml",
)
_VENUE_KEYS = (
    ("latitude", "longitude"),
    ("dest_latitude", "dest_longitude"),
    ("venueLatitude", "venueLongitude"),
)
_VENUE_PAIR_KEYS = ("ll", "location", "coords", "position", "geo")


def _offset(rnd: random.Random, km_lo: float, km_hi: float) -> tuple[float, float]:
    """A point ``km_lo``..``km_hi`` km from the profile's location in a random direction."""
    import math

    home = PROFILE.location
    assert home is not None
    d, bearing = rnd.uniform(km_lo, km_hi), rnd.uniform(0, 2 * math.pi)
    lat = home.lat + d * math.cos(bearing) / 111.32
    lon = home.lon + d * math.sin(bearing) / (111.32 * math.cos(math.radians(home.lat)))
    return lat, lon


def _venue(rnd: random.Random) -> tuple[float, float]:
    """Coordinates that are not the device's: a venue in the same city (2–15 km: past the
    profile's 1 km tolerance), due east or north of it (one axis within tolerance), or anywhere."""
    home = PROFILE.location
    assert home is not None
    kind = rnd.randrange(4)
    if kind == 0:
        return _offset(rnd, 2, 15)
    if kind == 1:  # same latitude, another longitude
        return home.lat + rnd.uniform(-0.004, 0.004), home.lon + rnd.choice([-1, 1]) * rnd.uniform(0.05, 2)
    if kind == 2:  # same longitude, another latitude
        return home.lat + rnd.choice([-1, 1]) * rnd.uniform(0.05, 2), home.lon + rnd.uniform(-0.004, 0.004)
    return rnd.uniform(-60, 70), rnd.uniform(-170, 170)


def _venue_fields(rnd: random.Random, lat: float, lon: float) -> Fields:
    digits = rnd.choice([4, 5, 6, 7])
    if rnd.random() < 0.35:
        return [(rnd.choice(_VENUE_PAIR_KEYS), f"{lat:.{digits}f},{lon:.{digits}f}")]
    k_lat, k_lon = rnd.choice(_VENUE_KEYS)
    return [(k_lat, f"{lat:.{digits}f}"), (k_lon, f"{lon:.{digits}f}")]


def generate_held_out(seed: int = HELD_OUT_SEED, n: int = 400) -> list[Labelled]:
    """Requests of map, place-search, ride and weather APIs: venue coordinates (not the device's),
    the device's own location (within the profile's tolerance) beside them or alone, and
    coordinate-like numbers under unrelated keys, with the usual look-alike noise."""
    rnd = random.Random(seed)
    home = PROFILE.location
    assert home is not None
    out: list[Labelled] = []
    for i in range(n):
        where = HELD_OUT_PLACES[i % len(HELD_OUT_PLACES)]
        lab = Labelled(req=HttpRequestData(url=""))
        fields: Fields = []
        kind = i % 4
        if kind in (0, 1):  # one or two venues
            for _ in range(1 + (kind == 1)):
                fields += _venue_fields(rnd, *_venue(rnd))
            lab.pattern.add("location")
            lab.venue = True
            lab.desc.append("venue")
        if kind in (1, 2):  # the device's own location (a ride's pickup, a "near me" search)
            lat, lon = home.lat + rnd.uniform(-0.004, 0.004), home.lon + rnd.uniform(-0.004, 0.004)
            if rnd.random() < 0.5:
                fields += [("lat", f"{lat:.5f}"), ("lng", f"{lon:.5f}")]
            else:
                fields.append(("gps", f"{lat:.6f},{lon:.6f}"))
            lab.known.add("location")
            lab.desc.append("device location")
        fields += [
            ("radius", str(rnd.choice([500, 1000, 5000]))),
            ("q", rnd.choice(["cafe", "pharmacy", "museum"])),
        ]
        fields += noise_fields(rnd)
        fields = _unique_keys(fields)
        rnd.shuffle(fields)
        lab.req = place(
            fields, where, rnd, rnd.choice(("maps.example.com", "rides.example.net", "weather.example.org"))
        )
        lab.desc.insert(0, where)
        out.append(lab)
    return out


# ---------------------------------------------------------------------------------------------
# HAR and mitmproxy flow round trips
# ---------------------------------------------------------------------------------------------


def write_har(items: Sequence[Labelled], path: Path) -> None:
    entries = []
    for lab in items:
        r = lab.req
        post = None
        if r.body:
            try:
                post = {"mimeType": dict(r.headers).get("Content-Type", ""), "text": r.body.decode("utf-8")}
            except UnicodeDecodeError:
                post = {
                    "mimeType": dict(r.headers).get("Content-Type", ""),
                    "text": base64.b64encode(r.body).decode(),
                    "encoding": "base64",
                }
        req: dict[str, object] = {
            "method": "POST" if r.body else "GET",
            "url": r.url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in r.headers],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(r.body),
        }
        if post is not None:
            req["postData"] = post
        entries.append(
            {"startedDateTime": "2024-05-05T10:00:00.000Z", "time": 1, "request": req, "response": {}}
        )
    path.write_text(
        json.dumps({"log": {"version": "1.2", "creator": {"name": "pii_corpus"}, "entries": entries}})
    )


def read_har(path: Path) -> list[HttpRequestData]:
    out = []
    for e in json.loads(path.read_text())["log"]["entries"]:
        r = e["request"]
        post = r.get("postData") or {}
        text = post.get("text", "")
        body = base64.b64decode(text) if post.get("encoding") == "base64" else text.encode("utf-8")
        headers = tuple((h["name"], h["value"]) for h in r["headers"])
        out.append(HttpRequestData(url=r["url"], headers=headers, body=body))
    return out


def write_flows(items: Sequence[Labelled], path: Path) -> None:
    from mitmproxy import http, io
    from mitmproxy.test import tflow

    with path.open("wb") as f:
        w = io.FlowWriter(f)
        for lab in items:
            r = lab.req
            headers = [(k.encode(), v.encode()) for k, v in r.headers]
            req = http.Request.make("POST" if r.body else "GET", r.url, b"", headers)
            req.raw_content = r.body  # as sent: keep the Content-Encoding'd bytes
            w.add(tflow.tflow(req=req, resp=True))


def read_flows(path: Path) -> list[HttpRequestData]:
    from mitmproxy import http, io

    out = []
    with path.open("rb") as f:
        for fl in io.FlowReader(f).stream():
            if not isinstance(fl, http.HTTPFlow):
                continue
            r = fl.request
            headers = tuple(
                (k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in r.headers.fields
            )
            out.append(HttpRequestData(url=r.url, headers=headers, body=r.raw_content or b""))
    return out


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Report:
    per_type: dict[str, Score]
    overall: Score
    known_recall: Score
    """Only labels carried as profile values, counted found when reported with confidence known."""
    pattern_recall: Score
    misses: list[str]
    false_positives: list[str]
    personal: Score = field(default_factory=Score)
    """Personal-data types only (not :data:`NOT_PERSONAL`)."""


#: Finding types that are not personal data: left out of :attr:`Report.personal`.
NOT_PERSONAL = NOT_PERSONAL_DATA


def evaluate(
    items: Sequence[Labelled],
    requests: Iterable[HttpRequestData],
    scan: Callable[[HttpRequestData], tuple[DataFinding, ...]],
    *,
    located: bool = False,
) -> Report:
    """Precision and recall per data type, at (request, data type) granularity. ``located``: the
    detector has a profile location (venue coordinates are then expected as ``coordinates``)."""
    per: dict[str, Score] = {}
    overall, personal, known_rec, pattern_rec = Score(), Score(), Score(), Score()
    misses: list[str] = []
    fps: list[str] = []
    for lab, req in zip(items, requests, strict=True):
        known, pattern = lab.expected(located)
        labels = known | pattern
        findings = scan(req)
        found = {f.data_type for f in findings}
        if "mac" in found:  # a MAC of unknown interface kind is right for either label
            found.discard("mac")
            found |= ({"wifi_mac", "bt_mac"} & labels) or {"mac"}
        found_known = {f.data_type for f in findings if f.confidence == "known"}
        for t in found | labels:
            s = per.setdefault(t, Score())
            scores = (s, overall) if t in NOT_PERSONAL else (s, overall, personal)
            if t in found and t in labels:
                for x in scores:
                    x.tp += 1
            elif t in found:
                for x in scores:
                    x.fp += 1
                where = next((f.location for f in findings if f.data_type == t), "?")
                fps.append(f"{t} at {where} in {lab.desc}")
            else:
                for x in scores:
                    x.fn += 1
                misses.append(f"{t} in {lab.desc}")
        for t in known:
            if t in found_known:
                known_rec.tp += 1
            else:
                known_rec.fn += 1
        for t in pattern:
            if t in found:
                pattern_rec.tp += 1
            else:
                pattern_rec.fn += 1
    return Report(per, overall, known_rec, pattern_rec, misses, fps, personal)


def markdown_table(with_profile: Report, without: Report) -> str:
    lines = [
        "| data type | precision (profile) | recall (profile) | precision (no profile) | recall (no profile) | labels |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in sorted(with_profile.per_type):
        a = with_profile.per_type[t]
        b = without.per_type.get(t)  # none: a type only a profile location gives (coordinates)
        bare = f"{b.precision:.3f} | {b.recall:.3f}" if b is not None else "– | –"
        lines.append(f"| {t} | {a.precision:.3f} | {a.recall:.3f} | {bare} | {a.tp + a.fn} |")
    o, p = with_profile.overall, without.overall
    lines.append(
        f"| **overall** | {o.precision:.3f} | {o.recall:.3f} | {p.precision:.3f} | {p.recall:.3f} | {o.tp + o.fn} |"
    )
    lines.append("")
    lines.append(
        f"Known-value recall (profile): {with_profile.known_recall.recall:.3f} "
        f"({with_profile.known_recall.tp}/{with_profile.known_recall.tp + with_profile.known_recall.fn}); "
        f"pattern-only recall: {with_profile.pattern_recall.recall:.3f} "
        f"({with_profile.pattern_recall.tp}/{with_profile.pattern_recall.tp + with_profile.pattern_recall.fn})."
    )
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - manual table refresh for docs/pii.md
    from audit.traffic.pii import PiiDetector

    items = generate()
    reqs = [x.req for x in items]
    print(f"{len(items)} requests, seed {SEED}\n")
    print(
        markdown_table(
            evaluate(items, reqs, PiiDetector(PROFILE).scan, located=True),
            evaluate(items, reqs, PiiDetector(None).scan),
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
