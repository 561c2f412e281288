"""Which personal data an HTTP request carries.

Two kinds of detection, both over every part of a request (host, path segments, query names and
values, headers, cookies, and bodies: form, JSON, XML, multipart, text, printable strings of binary
data; Content-Encoding undone; base64 blobs decoded and re-scanned):

* **known** values from a :class:`~audit.traffic.profile.DeviceProfile`, in every encoding apps
  use (case variants, without separators, URL-encoded, base64, hex, MD5/SHA-1/SHA-256). All
  variants of all values are compiled once into a single trie-shaped regular expression, so a
  request is scanned in one pass per field whatever the number of values.
* **pattern** detectors that need no profile: e-mail addresses, Luhn-valid IMEIs, MAC addresses,
  advertising IDs, coordinates, phone numbers, Android IDs, IMSI/ICCID and serials under telling
  keys.

``PiiDetector(None)`` runs the pattern detectors only; it is cheap and meant to run on every
request the addon and the importers see. Raw values never leave this module: findings carry
:func:`mask` ed values only, and nothing is logged.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit
from xml.etree import ElementTree

from audit.models import DataFinding, HttpRequestData
from audit.traffic.encodings import (
    MAX_DECODED,
    base64_text,
    base64_tokens,
    decode_content,
    maybe_base64,
    printable_strings,
    value_variants,
)
from audit.traffic.profile import DeviceProfile

if TYPE_CHECKING:
    from audit.store import Store

log = logging.getLogger(__name__)

try:  # google-re2: one linear-time DFA pass for the whole-payload prefilter (see PiiDetector.interesting)
    import re2 as _re2
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

__all__ = [
    "PiiDetector",
    "PiiRescan",
    "PiiSummaryRow",
    "luhn_ok",
    "mask",
    "normalize_key",
    "rescan_store",
    "summarize",
]

#: Re-scan depth for nested containers (base64 blob → JSON → stringified JSON …).
MAX_DEPTH = 3
#: Fields examined per request; the rest of a gigantic body is ignored.
MAX_FIELDS = 50_000
#: Longest field value scanned (longer values are scanned up to this length).
MAX_FIELD_LEN = 1 << 20
#: Bytes decoded from base64 tokens per request, in total. One token may be a gzip bomb and its text
#: may hold 64 more: without a total, a 3 KB body kept the detector busy for minutes (fuzzing).
MAX_DECODED_PER_REQUEST = MAX_DECODED

_BULLET = "•"


def mask(value: str) -> str:
    """Masked form of a value for display: a little of each end, never the whole value.

    >>> mask("358240051111110")
    '35•••••••••1110'
    """
    v = value.strip()
    n = len(v)
    if n <= 4:
        return _BULLET * max(n, 1)
    if n <= 8:
        head, tail = 1, 1
    elif n <= 12:
        head, tail = 2, 2
    else:
        head, tail = 2, 4
    return v[:head] + _BULLET * min(n - head - tail, 16) + v[-tail:]


def luhn_ok(digits: str) -> bool:
    """Luhn checksum (IMEI check digit, ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_KEY_JUNK = re.compile(r"[^a-z0-9]")


def normalize_key(key: str) -> str:
    """``X-Android-ID`` → ``androidid``; ``advertising_id`` → ``advertisingid``."""
    k = key.lower()
    if k.startswith("x-"):
        k = k[2:]
    return _KEY_JUNK.sub("", k)[:64]


# ---------------------------------------------------------------------------------------------
# Key vocabularies for the pattern detectors (normalised with normalize_key)
# ---------------------------------------------------------------------------------------------

# Exact keys, then suffixes (long enough not to be accidental: "gpsadid", "deviceimei", "userphone").
_AD_KEYS = frozenset(
    "adid gaid aaid idfa oaid advertisingid adsid googleaid googleadid gpsadid gadid androidadid "
    "advertiserid adidentifier advertisingidentifier ifa maid gpsadvertisingid deviceadid".split()
)
_AD_SUFFIXES = ("gaid", "aaid", "idfa", "oaid", "advertisingid", "adid")
_LAT_KEYS = frozenset("lat latitude gpslat geolat userlat devicelat locationlat".split())
_LON_KEYS = frozenset(
    "lng lon long longitude gpslng gpslon geolng geolon userlng userlon devicelng devicelon".split()
)
_LATLON_KEYS = frozenset(
    "loc location gps latlng latlon ll coords coordinates geo position geolocation userlocation".split()
)
_PHONE_KEYS = frozenset(
    "phone phonenumber msisdn mobile mobilenumber tel telephone line1number phoneno cellphone mobileno".split()
)
_PHONE_SUFFIXES = ("phone", "phonenumber", "msisdn", "mobilenumber", "line1number")
_ANDROID_ID_KEYS = frozenset("androidid ssaid andid deviceid udid did".split())
_ANDROID_ID_SUFFIXES = ("androidid",)
_IMEI_KEYS = frozenset("imei imei1 imei2 deviceimei meid".split())
_IMEI_SUFFIXES = ("imei",)
_IMSI_KEYS = frozenset("imsi subscriberid".split())
_ICCID_KEYS = frozenset("iccid simserial simserialnumber simid".split())
_SERIAL_KEYS = frozenset("serial serialno serialnumber roserialno buildserial deviceserial hwserial".split())
_MAC_KEYS = frozenset(
    "mac macaddress macaddr wifimac wlanmac btmac bluetoothmac bluetoothaddress bssid wifibssid".split()
)


def _key_class(k: str) -> str | None:
    if not k:
        return None
    if k in _AD_KEYS or k.endswith(_AD_SUFFIXES):
        return "oaid" if k.endswith("oaid") else "aaid"
    if k in _LAT_KEYS or k.endswith("latitude"):
        return "lat"
    if k in _LON_KEYS or k.endswith("longitude"):
        return "lon"
    if k in _LATLON_KEYS:
        return "latlon"
    if k in _IMEI_KEYS or k.endswith(_IMEI_SUFFIXES):
        return "meid" if k == "meid" else "imei"
    if k in _ANDROID_ID_KEYS or k.endswith(_ANDROID_ID_SUFFIXES):
        return "android_id"
    if k in _PHONE_KEYS or k.endswith(_PHONE_SUFFIXES):
        return "phone"
    if k in _IMSI_KEYS or k.endswith("imsi"):
        return "imsi"
    if k in _ICCID_KEYS or k.endswith("iccid"):
        return "iccid"
    if k in _SERIAL_KEYS or k.endswith(("serialno", "serialnumber")):
        return "serial"
    if k in _MAC_KEYS or k.endswith(("macaddress", "mac", "bssid")):
        if "bssid" in k:
            return "bssid"
        return "bt_mac" if k.startswith(("bt", "bluetooth")) else "wifi_mac"
    return None


# Words _key_class matches as a suffix of the normalised key; all other vocabulary words must be
# the whole key. Kept in one place with _key_class so that the prefilter stays conservative.
_SUFFIX_WORDS = frozenset(
    _AD_SUFFIXES
    + _PHONE_SUFFIXES
    + _ANDROID_ID_SUFFIXES
    + _IMEI_SUFFIXES
    + ("latitude", "longitude", "imsi", "iccid", "serialno", "serialnumber", "macaddress", "mac", "bssid")
)
_EXACT_WORDS = (
    _AD_KEYS | _LAT_KEYS | _LON_KEYS | _LATLON_KEYS | _PHONE_KEYS | _ANDROID_ID_KEYS | _IMEI_KEYS
    | _IMSI_KEYS | _ICCID_KEYS | _SERIAL_KEYS | _MAC_KEYS
) - _SUFFIX_WORDS  # fmt: skip


def _key_trigger_pattern() -> str:
    """Regex (RE2 syntax) finding any telling key in a payload, whatever its case or separators
    (``android_id``, ``androidId``, ``Android-ID``), as a JSON key, form name or XML tag/attribute."""

    def spelled(word: str) -> str:
        return "[_. -]?".join(re.escape(ch) for ch in word)

    right = r"""(?:\\?["'=>:/\s]|$)"""
    suffix = "|".join(spelled(w) for w in sorted(_SUFFIX_WORDS))
    exact = "|".join(spelled(w) for w in sorted(_EXACT_WORDS))
    return rf"(?i:(?:{suffix}){right}|(?:^|[^a-z0-9])(?:{exact}){right})"


# ---------------------------------------------------------------------------------------------
# Pattern detectors
# ---------------------------------------------------------------------------------------------

# Bounded repetitions keep these linear on hostile input.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z])"
)
_MAC_SEP = re.compile(
    r"(?<![0-9A-Fa-f:\-])[0-9A-Fa-f]{2}([:\-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:\-])"
)
_MAC_BARE = re.compile(r"[0-9A-Fa-f]{12}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_HEXID = re.compile(r"[0-9a-fA-F]{16,64}")
_DIGITS15 = re.compile(r"\d{15}")
_IMEI_CONTEXT = re.compile(r"(?i)imei[\"'\s:=_\-]{0,4}(\d{15})(?!\d)")
_COORD = re.compile(r"-?\d{1,3}\.(\d{3,15})")
_LATLON_PAIR = re.compile(r"\s*\(?\s*(-?\d{1,2}\.\d{3,15})\s*[,;/ ]\s*(-?\d{1,3}\.\d{3,15})\s*\)?\s*")
_PHONE = re.compile(r"\+?[\d\s\-().]{7,24}")
_SERIAL = re.compile(r"[A-Za-z0-9]{6,20}")
_ICCID = re.compile(r"89\d{16,20}[Ff]?")
_MEID = re.compile(r"[0-9A-Fa-f]{14}")
_DIGITS15_RUN = re.compile(r"(?<![\d.])\d{15}(?!\d)")
# Keys of JSON objects (also inside stringified JSON), form/query pairs and XML tags/attributes.
_KEYS_IN_TEXT = re.compile(
    r'\\?"([^"\\]{1,64})\\?"\s*:|([A-Za-z0-9_.\[\]\-]{1,64})=|<([A-Za-z_][\w.\-:]{0,63})|\s([\w\-:.]{1,64})=["\']'
)
_PLACEHOLDER_MACS = frozenset({"000000000000", "020000000000", "ffffffffffff"})
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
# Reporting-body prefixes of IMEIs in the wild (GSMA TAC allocation); required when a 15-digit
# number is not under an IMEI key, because 1 in 10 arbitrary 15-digit numbers is Luhn-valid.
_IMEI_RBI = ("01", "35", "86", "99")
_SERIAL_PLACEHOLDERS = frozenset({"unknown", "null", "none", "undefined", "000000000000"})


def _is_placeholder_mac(mac: str) -> bool:
    bare = re.sub(r"[:\-]", "", mac).lower()
    return bare in _PLACEHOLDER_MACS


def _patterns(
    value: str, key_class: str | None, whole: str, known: Callable[[str], bool] = lambda _: False
) -> Iterator[tuple[str, str]]:
    """(data type, matched text) for pattern detections in one field value.

    ``whole`` is the stripped value; ``key_class`` the category of the field's key, if telling.
    Matches for which ``known`` is true (profile values, reported with their real type) are passed
    over. A scan of many matches stops at the first one: a finding is one per type and place, and a
    megabyte of e-mail addresses or IMEIs cost a second per field.
    """
    if "@" in value:
        for m in _EMAIL.finditer(value):
            if not known(m.group()):
                yield "email", m.group()
                break
    if (":" in value or "-" in value) and len(value) >= 17:
        for m in _MAC_SEP.finditer(value):
            if not _is_placeholder_mac(m.group()) and not known(m.group()):
                # Without a telling key the kind of interface is unknown: plain "mac".
                t = key_class if key_class in ("wifi_mac", "bt_mac", "bssid") else "mac"
                yield t, m.group()
                break
    n = len(whole)
    if n == 15 and whole.isdigit():
        if luhn_ok(whole) and (key_class == "imei" or whole.startswith(_IMEI_RBI)):
            yield "imei", whole
    elif n > 15 and "imei" in value.lower():
        for m in _IMEI_CONTEXT.finditer(value):
            if not known(m.group(1)) and luhn_ok(m.group(1)):
                yield "imei", m.group(1)
                break
    if key_class is None or n == 0 or n > 128:
        return
    if key_class in ("aaid", "oaid"):
        if _UUID.fullmatch(whole):
            if whole != _ZERO_UUID:
                yield key_class, whole
        elif key_class == "oaid" and _HEXID.fullmatch(whole) and whole.strip("0"):
            yield "oaid", whole
    elif key_class in ("lat", "lon"):
        if _COORD.fullmatch(whole):
            x = float(whole)
            if abs(x) <= (90 if key_class == "lat" else 180) and abs(x) > 0.001:
                yield "location", whole
    elif key_class == "latlon":
        pair = _LATLON_PAIR.fullmatch(whole)
        if pair and abs(float(pair.group(1))) <= 90 and abs(float(pair.group(2))) <= 180:
            yield "location", whole
    elif key_class == "android_id":
        if _HEX16.fullmatch(whole) and whole.strip("0"):
            yield "android_id", whole
    elif key_class == "imei":
        if key_class == "imei" and n == 14 and whole.isdigit():
            yield "imei", whole  # IMEI without check digit
    elif key_class == "meid":
        if _MEID.fullmatch(whole) and whole.strip("0"):
            yield "meid", whole
    elif key_class == "phone":
        if _PHONE.fullmatch(whole):
            digits = sum(ch.isdigit() for ch in whole)
            if 7 <= digits <= 15 and not _COORD.fullmatch(whole):
                yield "phone", whole
    elif key_class == "imsi":
        if n == 15 and whole.isdigit() and whole[0] in "234567":
            yield "imsi", whole
    elif key_class == "iccid":
        if _ICCID.fullmatch(whole):
            yield "iccid", whole
    elif key_class == "serial":
        if _SERIAL.fullmatch(whole) and whole.lower() not in _SERIAL_PLACEHOLDERS and not whole.isalpha():
            yield "serial", whole
    elif key_class in ("wifi_mac", "bt_mac", "bssid"):
        if _MAC_BARE.fullmatch(whole) and whole.lower() not in _PLACEHOLDER_MACS:
            yield key_class, whole


# ---------------------------------------------------------------------------------------------
# Known values
# ---------------------------------------------------------------------------------------------

_ANYWHERE, _BOUNDED, _WHOLE = 0, 1, 2


@dataclass(frozen=True)
class _Needle:
    data_type: str
    encoding: str
    masked: str
    mode: int
    digits: bool = False
    """Starts or ends with a digit: must not be part of a longer number (``0.358240051111110``)."""


def _mode(needle: str) -> int:
    # Short needles match by coincidence: require token boundaries, or the whole field value.
    if len(needle) < 6:
        return _WHOLE
    if len(needle) < 12:
        return _BOUNDED
    return _ANYWHERE


def _profile_values(p: DeviceProfile) -> Iterator[tuple[str, str, bool, bool]]:
    """(data type, value, separators?, derived encodings?) for every known value."""
    ident = (
        ("android_id", p.android_id, False), ("aaid", p.aaid, True), ("oaid", p.oaid, True),
        ("imei", p.imei, False), ("imei", p.imei2, False), ("meid", p.meid, False),
        ("serial", p.serial, False), ("wifi_mac", p.wifi_mac, True), ("bt_mac", p.bt_mac, True),
        ("iccid", p.iccid, False), ("imsi", p.imsi, False),
    )  # fmt: skip
    for t, v, sep in ident:
        if v:
            yield t, v, sep, True
    for ph in p.phone:
        yield "phone", ph, True, True
        digits = re.sub(r"\D", "", ph)
        if ph.lstrip().startswith("+"):
            yield "phone", digits, False, True
            yield "phone", "00" + digits, False, True
    for em in p.email:
        yield "email", em, False, True
    for acc in p.accounts:
        yield "account", acc, False, True
    if p.mcc_mnc:
        yield "carrier", p.mcc_mnc, True, False
    if p.carrier:
        yield "carrier", p.carrier, False, False
    for pkg in p.installed_app_markers:
        yield "installed_apps", pkg, False, True
    for name, v in sorted(p.custom.items()):
        yield f"custom:{name}", v, False, True


def _trie_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``words``, shaped as a trie so that each position costs a
    character-class test instead of one attempt per word (Python's re has no Aho-Corasick)."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    if not trie:
        return None

    def build(node: dict[str, Any]) -> str:
        end = "" in node
        alts = [re.escape(ch) + build(node[ch]) for ch in sorted(k for k in node if k)]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if end:
            return (body if len(alts) > 1 else "(?:" + body + ")") + "?"
        return body

    return re.compile(build(trie))


def _coordinate_prefixes(x: float, tolerance: float) -> list[str]:
    """Regex alternatives matching the text of any number with ≥ 3 decimals within ``tolerance``
    of ``x``, by its first two decimals (``52.51``, ``52.52``); the exact test happens per field."""
    lo, hi = abs(x) - tolerance, abs(x) + tolerance
    out = []
    for c in range(max(int(math.floor(lo * 100 - 1e-9)), 0), int(math.floor(hi * 100 + 1e-9)) + 1):
        out.append(re.escape(f"{c // 100}.{c % 100:02d}") + r"\d")
    return out


def _is_word(ch: str) -> bool:
    return ch.isalnum()


def _inside_number(text: str, start: int, end: int) -> bool:
    """Is text[start:end] part of a longer number (digits or a decimal point next to it)?"""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before.isdigit() or after.isdigit():
        return True
    if before == "." and start > 1 and text[start - 2].isdigit():
        return True
    return after == "." and end + 1 < len(text) and text[end + 1].isdigit()


# ---------------------------------------------------------------------------------------------
# Request → fields
# ---------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
# A form body: "k=v" then "&k=v" or "&k" pairs. Each pair is one key character then anything up to
# the next "&": the same language as "key{1,256} =? value*", whose ambiguous split between key and
# value backtracked exponentially on "a=1&aaaa&aaaa…&=" (fuzzing, a 200-byte body hung the import).
_FORMISH = re.compile(r"[^=&\s]{1,256}=[^&\s]*(?:&[^=&\s][^&\s]*)*&?")
_Field = tuple[str, str, str]  # location, key, value


def _json_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return parent + "[*]"  # array elements collapse: one finding per path, not per element
    k = key[:64]
    if _IDENT.fullmatch(k):
        return f"{parent}.{k}"
    return parent + "[" + json.dumps(k, ensure_ascii=True) + "]"


def _json_fields(doc: Any) -> Iterator[_Field]:
    """Leaves of a JSON document: (JSONPath, key, value as text). Iterative (hostile nesting)."""
    stack: list[tuple[str, str, Any]] = [("$", "", doc)]
    while stack:
        path, key, node = stack.pop()
        if isinstance(node, dict):
            for k, v in reversed(list(node.items())):
                sk = str(k)
                p = _json_path(path, sk)
                yield p, "", sk
                stack.append((p, sk, v))
        elif isinstance(node, list):
            p = _json_path(path, 0)
            for v in reversed(node):
                stack.append((p, key, v))
        elif isinstance(node, str):
            yield path, key, node
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            yield path, key, repr(node) if isinstance(node, float) else str(node)


def _load_json(text: str) -> list[Any] | None:
    s = text.strip()
    if not s or s[0] not in "{[":
        return None
    try:
        return [json.loads(s)]
    except (ValueError, RecursionError):
        pass
    docs: list[Any] = []  # NDJSON analytics batches
    for line in s.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            docs.append(json.loads(line))
        except (ValueError, RecursionError):
            return None
    return docs or None


def _xml_fields(text: str) -> Iterator[_Field] | None:
    # Entity declarations are refused outright (billion laughs / external entities), not parsed.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, ValueError, RecursionError):
        return None

    def local(tag: Any) -> str:
        t = str(tag)
        return t.rsplit("}", 1)[-1][:64]

    def walk() -> Iterator[_Field]:
        stack: list[tuple[str, ElementTree.Element]] = [("/" + local(root.tag), root)]
        while stack:
            path, el = stack.pop()
            tag = local(el.tag)
            # <string name="imei">…</string>-style: the name attribute is the key.
            key = el.attrib.get("name") or el.attrib.get("key") or tag
            for a, v in el.attrib.items():
                yield f"{path}/@{local(a)}", local(a), v
            if el.text and el.text.strip():
                yield path, key, el.text
            for child in reversed(list(el)):
                stack.append((f"{path}/{local(child.tag)}", child))

    return walk()


def _parse_text(text: str, ctype: str) -> tuple[str, Iterator[_Field]]:
    """Structure of a text payload: (kind, fields with locations relative to the payload)."""
    ct = ctype.lower()
    if "json" in ct or text.lstrip()[:1] in ("{", "["):
        docs = _load_json(text)
        if docs is not None:
            return "json", (f for d in docs for f in _json_fields(d))
    if "x-www-form-urlencoded" in ct or (
        len(text) < 1_000_000 and "=" in text and _FORMISH.fullmatch(text.strip())
    ):
        pairs = parse_qsl(text.strip(), keep_blank_values=True)
        if pairs:
            return "form", _form_fields(pairs)
    if "xml" in ct or text.lstrip()[:1] == "<":
        fields = _xml_fields(text)
        if fields is not None:
            return "xml", fields
    return "text", iter([("", "", text)])


def _form_fields(pairs: list[tuple[str, str]]) -> Iterator[_Field]:
    for k, v in pairs:
        name = k[:64]
        yield name, "", k
        yield name, k, v


def _header(headers: Iterable[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v
    return ""


def _param(ctype: str, name: str) -> str | None:
    m = re.search(rf'(?i);\s*{name}\s*=\s*("([^"]*)"|[^;\s]+)', ctype)
    if not m:
        return None
    return m.group(2) if m.group(2) is not None else m.group(1)


def _multipart(data: bytes, boundary: str) -> Iterator[tuple[str, str, bytes]]:
    """(name, content type, body) of each part of a multipart body."""
    delim = b"--" + boundary.encode("latin-1", "replace")
    for i, chunk in enumerate(data.split(delim)[1:257]):
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        sep = chunk.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep, sep_len = chunk.find(b"\n\n"), 2
        if sep < 0:
            continue
        head = chunk[:sep].decode("latin-1")
        body = chunk[sep + sep_len :]
        body = body.removesuffix(b"\r\n").removesuffix(b"\n")
        name = f"part{i + 1}"
        ctype = ""
        for line in head.splitlines():
            low = line.lower()
            if low.startswith("content-disposition:"):
                n = _param(line, "name")
                if n:
                    name = n[:64]
            elif low.startswith("content-type:"):
                ctype = line.split(":", 1)[1].strip()
        yield name, ctype, body


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _looks_binary(data: bytes) -> str | None:
    """The body as text if it is text, else None."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    sample = s[:4096]
    return None if len(_CONTROL.findall(sample)) > len(sample) * 0.05 else s


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------


class PiiDetector:
    """Finds personal data in HTTP requests. Build once (all encodings are precomputed), call
    :meth:`scan` per request. Stateless between calls; safe to share across threads."""

    def __init__(self, profile: DeviceProfile | None = None) -> None:
        self.profile = profile
        self._needles: dict[str, _Needle] = {}
        self._whole: dict[str, _Needle] = {}
        if profile is not None:
            for data_type, value, separators, derived in _profile_values(profile):
                masked = mask(value)
                for needle, encoding in value_variants(value, separators=separators, derived=derived):
                    if len(needle) < 3:
                        continue
                    digits = needle[0].isdigit() or needle[-1].isdigit()
                    n = _Needle(data_type, encoding, masked, _mode(needle), digits)
                    target = self._whole if n.mode == _WHOLE else self._needles
                    target.setdefault(needle, n)
        self._regex = _trie_regex(sorted(self._needles))
        self._geo: tuple[float, float, float, float, str] | None = None
        if profile is not None and profile.location is not None:
            loc = profile.location
            dlat = loc.tolerance_m / 111_320.0
            dlon = loc.tolerance_m / max(111_320.0 * math.cos(math.radians(loc.lat)), 1.0)
            self._geo = (loc.lat, loc.lon, dlat, dlon, mask(f"{loc.lat:.6f},{loc.lon:.6f}"))
        self._geo_trigger: re.Pattern[str] | None = None
        if self._geo is not None:
            lat, lon, dlat, dlon, _ = self._geo
            geo_prefixes = _coordinate_prefixes(lat, dlat) + _coordinate_prefixes(lon, dlon)
            self._geo_trigger = re.compile(r"(?<![\d.])-?(?:" + "|".join(geo_prefixes) + ")")
        whole = _trie_regex(sorted(self._whole))
        self._whole_trigger = (
            None
            if whole is None
            else re.compile(r"(?<![A-Za-z0-9])(?:" + whole.pattern + r")(?![A-Za-z0-9])")
        )
        self._key_cache: dict[str, str | None] = {}
        self._trigger: Any = None
        self._known_trigger: Any = None
        if _re2 is not None:
            parts = [
                r"@",
                r"\\u",  # JSON \uXXXX escapes can hide any character
                r"[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-][0-9A-Fa-f]{2}[:\-]",  # MAC
                r"(?:^|[^\d.])\d{15}(?:$|\D)",  # IMEI
                # base64 of text: a long run mixing upper and lower case (hex IDs and words do not)
                r"[A-Za-z0-9+/_\-]{6,}(?:[A-Z][A-Za-z0-9+/_\-]*[a-z]|[a-z][A-Za-z0-9+/_\-]*[A-Z])[A-Za-z0-9+/_\-]{6,}",
                _key_trigger_pattern(),
            ]
            # Known values get their own automaton: one DFA for both grows too many states.
            known: list[str] = []
            if self._regex is not None:
                known.append(self._regex.pattern)
            if whole is not None:
                known.append(r"(?:^|[^A-Za-z0-9])(?:" + whole.pattern + r")(?:$|[^A-Za-z0-9])")
            if self._geo is not None:
                known.append(r"(?:^|[^\d.])-?(?:" + "|".join(geo_prefixes) + ")")
            opts = _re2.Options()
            opts.max_mem = 64 << 20
            self._trigger = _re2.compile("|".join(parts), opts)
            self._known_trigger = _re2.compile("|".join(known), opts) if known else None

    def key_class(self, key: str) -> str | None:
        """Category of a field name for the pattern detectors (cached: key names repeat)."""
        kc = self._key_cache.get(key, "?")
        if kc == "?":
            kc = _key_class(normalize_key(key))
            if len(self._key_cache) > 20_000:
                self._key_cache.clear()
            self._key_cache[key] = kc
        return kc

    def interesting(self, text: str) -> bool:
        """Cheap whole-payload test (a few C-level regex passes): could any detector fire on a
        field of this payload? False lets :meth:`scan` skip walking a large body field by field.

        Conservative by construction: every detector needs something visible here (a needle, an
        '@', a MAC, a 15-digit run, a telling key, a base64 token of text, a coordinate near the
        profile's location).
        """
        t = text.replace("\\/", "/") if "\\/" in text else text  # org.json escapes every '/'
        if "%" in t:  # form bodies are URL-decoded before detection: '@' is %40 there
            t = t + "\n" + unquote_plus(t)
        if self._trigger is not None:
            if self._trigger.search(t) is not None:
                return True
            return self._known_trigger is not None and self._known_trigger.search(t) is not None
        # Without RE2: the same tests with Python's re (several passes, slower, same answers).
        if "\\u" in t:
            return True
        if self._regex is not None and self._regex.search(t):
            return True
        if self._whole_trigger is not None and self._whole_trigger.search(t):
            return True
        if self._geo_trigger is not None and self._geo_trigger.search(t):
            return True
        if "@" in t or _DIGITS15_RUN.search(t) or _MAC_SEP.search(t):
            return True
        for groups in set(_KEYS_IN_TEXT.findall(t)):
            for k in groups:
                if k and self.key_class(k) is not None:
                    return True
        return any(maybe_base64(tok) is not None for tok in base64_tokens(t))

    def is_known(self, text: str) -> bool:
        """Whether ``text`` is one of the profile's values in one of its encodings."""
        return text in self._needles or text in self._whole

    @property
    def needle_count(self) -> int:
        """Number of precomputed encoded forms of the profile's values."""
        return len(self._needles) + len(self._whole)

    def scan(self, request: HttpRequestData) -> tuple[DataFinding, ...]:
        """Every personal-data finding in one request, deduplicated by (type, location, encoding)."""
        return _Scan(self).run(request)


class _Scan:
    """State of one :meth:`PiiDetector.scan` call."""

    def __init__(self, det: PiiDetector) -> None:
        self.det = det
        self.found: dict[tuple[str, str, str], DataFinding] = {}
        self.fields = 0
        self.in_binary = False
        self.lat_hit: str | None = None
        self.lon_hit: str | None = None
        self.decode_budget = MAX_DECODED_PER_REQUEST

    # -- bookkeeping -----------------------------------------------------------------------

    def add(self, data_type: str, location: str, encoding: str, confidence: str, masked: str) -> None:
        k = (data_type, location, encoding)
        old = self.found.get(k)
        if old is None or (old.confidence != "known" and confidence == "known"):
            self.found[k] = DataFinding(data_type, location, encoding, confidence, masked)

    def run(self, req: HttpRequestData) -> tuple[DataFinding, ...]:
        for loc, key, value in self.request_fields(req):
            if self.fields >= MAX_FIELDS:
                break
            self.field(loc, key, value, 0, "")
        if self.det._geo is not None and self.lat_hit and self.lon_hit:
            self.add("location", self.lat_hit, "plain", "known", self.det._geo[4])
        # Known findings first: a pattern hit at the same place adds nothing.
        known = [f for f in self.found.values() if f.confidence == "known"]
        seen = {(f.data_type, f.location) for f in known}
        pattern = [
            f
            for f in self.found.values()
            if f.confidence != "known" and (f.data_type, f.location) not in seen
        ]
        return tuple(known + pattern)

    # -- one field ---------------------------------------------------------------------------

    def field(self, loc: str, key: str, value: str, depth: int, outer: str) -> None:
        self.fields += 1
        det = self.det
        if len(value) < 5 and not det._whole:
            return  # nothing any detector looks for is this short
        if len(value) > MAX_FIELD_LEN:
            value = value[:MAX_FIELD_LEN]
        whole = value.strip()
        if det._regex is not None:
            added: set[str] = set()  # the same needle again here adds nothing: skip the checks
            for m in det._regex.finditer(value):
                if m.group() in added:
                    continue
                n = det._needles[m.group()]
                if n.mode == _BOUNDED and not self.in_binary:
                    s, e = m.start(), m.end()
                    if (s > 0 and _is_word(value[s - 1])) or (e < len(value) and _is_word(value[e])):
                        continue
                if n.digits and not self.in_binary and _inside_number(value, m.start(), m.end()):
                    continue
                self.add(n.data_type, loc, _join(outer, n.encoding), "known", n.masked)
                added.add(m.group())
        if det._whole and 3 <= len(whole) < 6:
            wn = det._whole.get(whole)
            if wn is not None:
                self.add(wn.data_type, loc, _join(outer, wn.encoding), "known", wn.masked)
        if det._geo is not None and "." in value:
            self.geo(loc, value)
        kc = det.key_class(key) if key else None
        for data_type, hit in _patterns(value, kc, whole, det.is_known):
            if det.is_known(hit):
                continue  # a profile value: reported above with its real type
            self.add(data_type, loc, _join(outer, "plain"), "pattern", mask(hit))
        if depth >= MAX_DEPTH or len(whole) < 16:
            return
        if whole[0] in "{[" and whole[-1] in "}]":
            docs = _load_json(whole)
            if docs is not None:  # stringified JSON inside JSON/form/header
                for d in docs:
                    for sub, k, v in _json_fields(d):
                        self.field(_nest(loc, sub), k, v, depth + 1, outer)
                return
        for tok in base64_tokens(value):
            if self.decode_budget <= 0:
                return
            text, decoded = base64_text(tok, min(MAX_DECODED, self.decode_budget))
            self.decode_budget -= decoded
            if text is None:
                continue
            kind, fields = _parse_text(text, "")
            enc = _join(outer, "base64")
            for sub, k, v in fields:
                if self.fields >= MAX_FIELDS:
                    return
                self.field(_nest(loc, sub), k or key, v, depth + 1, enc)

    def geo(self, loc: str, value: str) -> None:
        assert self.det._geo is not None
        lat, lon, dlat, dlon, _ = self.det._geo
        for m in _COORD.finditer(value):
            if self.lat_hit is not None and self.lon_hit is not None:
                return  # both found: the rest of a long value changes nothing
            try:
                x = float(m.group())
            except ValueError:
                continue
            if self.lat_hit is None and abs(x - lat) <= dlat:
                self.lat_hit = loc
            elif self.lon_hit is None and abs(x - lon) <= dlon:
                self.lon_hit = loc

    # -- request → fields --------------------------------------------------------------------

    def request_fields(self, req: HttpRequestData) -> Iterator[_Field]:
        try:
            parts = urlsplit(req.url)
            host = parts.hostname or ""
            path, query = parts.path, parts.query
        except ValueError:  # malformed URL (bad port, brackets): scan it as text
            host, path, query = "", req.url, ""
        if host:
            yield "host", "", host
        prev = ""
        for seg in path.split("/"):
            if seg:
                s = unquote(seg)
                yield "path", prev, s
                prev = s
        if query:
            for k, v in parse_qsl(query, keep_blank_values=True):
                name = k[:64]
                yield f"query:{name}", "", k
                yield f"query:{name}", k, v
        for k, v in req.headers:
            lk = k.lower()
            if lk == "cookie":
                for item in v.split(";"):
                    name, _, val = item.strip().partition("=")
                    if name or val:
                        # Cookie values are commonly URL-encoded for transport (like query values).
                        yield f"cookie:{name[:64]}", name, unquote(val) if "%" in val else val
            elif lk not in ("content-length", "host", "accept-encoding", "connection"):
                yield f"header:{k[:64]}", k, v
        if req.body:
            yield from self.body_fields(req)

    def body_fields(self, req: HttpRequestData) -> Iterator[_Field]:
        ctype = _header(req.headers, "content-type")
        data = decode_content(req.body, _header(req.headers, "content-encoding"), MAX_DECODED)
        if "multipart/" in ctype.lower():
            boundary = _param(ctype, "boundary")
            if boundary:
                for name, pctype, pbody in _multipart(data, boundary):
                    yield from self.payload_fields(pbody, pctype, f"body.multipart:{name}", True, name)
                return
        yield from self.payload_fields(data, ctype, "body", nested=False)

    def payload_fields(
        self, data: bytes, ctype: str, base: str, nested: bool, part_name: str = ""
    ) -> Iterator[_Field]:
        text = _looks_binary(data)
        if text is None:
            loc = base if nested else "body.binary"
            # Bytes next to a string in binary formats are tags and lengths, often printable:
            # token boundaries mean nothing there (see field()).
            for s in printable_strings(data):
                self.in_binary = True
                yield loc, "", s
                self.in_binary = False
            return
        # A multipart part's name is its key: let the prefilter see it too.
        if not self.det.interesting(f"{part_name}={text}" if part_name else text):
            return
        kind, fields = _parse_text(text, ctype)
        for sub, key, value in fields:
            if nested:  # a multipart part: its name is the key of a plain value
                yield _nest(base, sub), key or (part_name if kind == "text" else ""), value
            elif kind == "text":
                yield "body.text", key, value
            else:
                yield f"body.{kind}:{sub}", key, value


def _nest(loc: str, sub: str) -> str:
    return f"{loc}:{sub}" if sub else loc


def _join(outer: str, inner: str) -> str:
    if not outer:
        return inner
    return outer if inner == "plain" else f"{outer}+{inner}"


# ---------------------------------------------------------------------------------------------
# Re-scan of a case file (``audit pii``)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PiiSummaryRow:
    """Personal data of one type seen going to one host (masked values only)."""

    data_type: str
    host: str
    requests: int
    """Requests to the host that carried the type."""
    confidence: str
    """``known`` if any finding matched a device-profile value, else ``pattern``."""
    encodings: tuple[str, ...]
    locations: tuple[str, ...]
    masked: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_type": self.data_type,
            "host": self.host,
            "requests": self.requests,
            "confidence": self.confidence,
            "encodings": list(self.encodings),
            "locations": list(self.locations),
            "masked": list(self.masked),
        }


@dataclass(frozen=True)
class PiiRescan:
    """Result of :func:`rescan_store`."""

    requests: int
    """Stored requests scanned."""
    with_findings: int
    rows: tuple[PiiSummaryRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "with_findings": self.with_findings,
            "summary": [r.to_dict() for r in self.rows],
        }


def summarize(items: Iterable[tuple[str, Iterable[DataFinding]]]) -> tuple[PiiSummaryRow, ...]:
    """Group (host, findings of one request) by data type and host."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for host, findings in items:
        seen: set[str] = set()
        for f in findings:
            a = acc.setdefault(
                (f.data_type, host),
                {"requests": 0, "known": False, "enc": set(), "loc": set(), "masked": set()},
            )
            if f.data_type not in seen:
                a["requests"] += 1
                seen.add(f.data_type)
            a["known"] = a["known"] or f.confidence == "known"
            a["enc"].add(f.encoding)
            a["loc"].add(f.location)
            a["masked"].add(f.masked)
    rows = [
        PiiSummaryRow(
            data_type=t,
            host=h,
            requests=a["requests"],
            confidence="known" if a["known"] else "pattern",
            encodings=tuple(sorted(a["enc"])),
            locations=tuple(sorted(a["loc"])),
            masked=tuple(sorted(a["masked"])),
        )
        for (t, h), a in acc.items()
    ]
    rows.sort(key=lambda r: (r.data_type, -r.requests, r.host))
    return tuple(rows)


def rescan_store(store: Store, detector: PiiDetector, app: str | None = None) -> PiiRescan:
    """Re-run detection over every stored request of the case (or of one app label), replace the
    stored findings of those connections, and summarise by data type and destination host."""
    hosts = {cid: (c.host or c.ip or "") for cid, c in store.connections(app)}
    results: list[tuple[int, tuple[DataFinding, ...]]] = [
        (cid, detector.scan(request)) for cid, request in store.requests(app)
    ]
    for cid, findings in results:
        store.replace_findings(cid, findings)
    rows = summarize((hosts.get(cid, ""), findings) for cid, findings in results)
    return PiiRescan(len(results), sum(1 for _, f in results if f), rows)
