"""The detector: every field of a request through the known values and the pattern detectors."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, unquote_plus

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
from audit.traffic.pii.fields import (
    _Field,
    _header,
    _json_fields,
    _load_json,
    _looks_binary,
    _multipart,
    _param,
    _parse_text,
)
from audit.traffic.pii.keys import _key_class, _key_trigger_pattern, normalize_key
from audit.traffic.pii.known import (
    _BOUNDED,
    _WHOLE,
    _coordinate_prefixes,
    _inside_number,
    _is_word,
    _mode,
    _Needle,
    _profile_values,
    _trie_regex,
)
from audit.traffic.pii.patterns import _COORD, _DIGITS15_RUN, _KEYS_IN_TEXT, _LATLON_PAIR, _MAC_SEP, _patterns
from audit.traffic.pii.values import MAX_DECODED_PER_REQUEST, MAX_DEPTH, MAX_FIELD_LEN, MAX_FIELDS, mask
from audit.traffic.profile import DeviceProfile
from audit.traffic.records import query_pairs, url_parts

try:  # google-re2: one linear-time DFA pass for the whole-payload prefilter (see PiiDetector.interesting)
    import re2 as _re2
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None


class PiiDetector:
    """Finds personal data in HTTP requests. Build once (all encodings are precomputed), call
    :meth:`scan` per request. Between calls it keeps only caches (key classes, header places, the
    outcome of fields that depend on nothing else: :meth:`_Scan.top_field`), which never change a
    finding; safe to share across threads (each cache is a dict, read and written whole)."""

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
        self._field_memo: dict[tuple[str, str], _Outcome] = {}
        self._header_places: dict[str, str] = {}
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


#: What a field did to a scan, when it depended on nothing but its key and value: the findings it
#: added (data type, encoding, confidence, masked value; at the field's own place) and the bytes its
#: base64 tokens decoded (taken from the request's decode budget).
_Outcome = tuple[tuple[tuple[str, str, str, str], ...], int]
#: Field values up to this long are remembered (longer ones rarely repeat), this many at a time.
_MEMO_VALUE_LEN = 512
_MEMO_SIZE = 20_000


class _Scan:
    """State of one :meth:`PiiDetector.scan` call."""

    def __init__(self, det: PiiDetector) -> None:
        self.det = det
        self.found: dict[tuple[str, str, str], DataFinding] = {}
        self.fields = 0
        self.in_binary = False
        self.lat_hit: str | None = None
        self.lon_hit: str | None = None
        self.coordinates: list[tuple[str, str, str | None, str, str]] = []
        """Pattern coordinates (place, key, key class, value, encoding) met with a profile location:
        the device's ``location`` or other ``coordinates``, decided once the request is read."""
        self.decode_budget = MAX_DECODED_PER_REQUEST
        self.added: list[tuple[str, str, str, str]] | None = None
        """The findings of the field being remembered (:meth:`top_field`), while it is."""
        self.pure = True
        """Whether that field's outcome depended on its key and value alone."""

    # -- bookkeeping -----------------------------------------------------------------------

    def add(self, data_type: str, location: str, encoding: str, confidence: str, masked: str) -> None:
        if self.added is not None:
            self.added.append((data_type, encoding, confidence, masked))
        k = (data_type, location, encoding)
        old = self.found.get(k)
        if old is None or (old.confidence != "known" and confidence == "known"):
            self.found[k] = DataFinding(data_type, location, encoding, confidence, masked)

    def run(self, req: HttpRequestData) -> tuple[DataFinding, ...]:
        det = self.det
        memo, short_ok, geo = det._field_memo, not det._whole, det._geo is not None
        for loc, key, value in self.request_fields(req):
            if self.fields >= MAX_FIELDS:
                break
            # top_field's two cheapest answers, here: most fields of a request end in one of them
            n = len(value)
            if n < 5 and short_ok:
                self.fields += 1
                continue
            if n <= _MEMO_VALUE_LEN and not self.in_binary and not (geo and "." in value):
                remembered = memo.get((key, value))
                if remembered is not None and remembered[1] < self.decode_budget:
                    self.fields += 1
                    self.decode_budget -= remembered[1]
                    for data_type, encoding, confidence, masked in remembered[0]:
                        self.add(data_type, loc, encoding, confidence, masked)
                    continue
            self.top_field(loc, key, value)
        if det._geo is not None and self.lat_hit and self.lon_hit:
            self.add("location", self.lat_hit, "plain", "known", det._geo[4])
        if self.coordinates:
            self.place_coordinates()
        if not self.found:
            return ()
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

    def top_field(self, loc: str, key: str, value: str) -> None:
        """:meth:`field` of a field of the request itself, remembered by key and value: requests
        repeat header values, hosts and path segments (issue 15: most of a big HAR's detection).

        A field's outcome is remembered only when it depended on its key and value alone: no
        nested fields (stringified JSON, base64 text), no coordinate near the profile's location
        to pair up later, no binary body (token boundaries differ there), and every base64 token
        decoded below its cap (so that any budget above the bytes it took decodes it the same).
        Replayed, it adds the same findings in the same order and takes the same bytes from the
        budget: the request's findings are exactly those :meth:`field` gives."""
        det = self.det
        if len(value) < 5 and not det._whole:
            self.fields += 1  # what field() does with it
            return
        if self.in_binary or len(value) > _MEMO_VALUE_LEN or (det._geo is not None and "." in value):
            self.field(loc, key, value, 0, "")
            return
        memo = det._field_memo
        known = memo.get((key, value))
        if known is not None and known[1] < self.decode_budget:
            adds, spent = known
            self.fields += 1
            self.decode_budget -= spent
            for data_type, encoding, confidence, masked in adds:
                self.add(data_type, loc, encoding, confidence, masked)
            return
        fields, budget, coordinates = self.fields, self.decode_budget, len(self.coordinates)
        self.added, self.pure = [], True
        try:
            self.field(loc, key, value, 0, "")
            if (
                self.pure
                and self.fields == fields + 1
                and budget > 0
                and len(self.coordinates) == coordinates
            ):
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[(key, value)] = (tuple(self.added), budget - self.decode_budget)
        finally:
            self.added = None

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
            if data_type == "location" and det._geo is not None:
                self.coordinates.append((loc, key, kc, hit, _join(outer, "plain")))
                continue
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
                self.pure = False
                return
            cap = min(MAX_DECODED, self.decode_budget)
            text, decoded = base64_text(tok, cap)
            if decoded >= cap:  # cut at the cap (or a body as long): a bigger budget may differ
                self.pure = False
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

    def place_coordinates(self) -> None:
        """Report each pattern coordinate as the device's ``location`` or as other ``coordinates``
        (issue 12): within the profile's tolerance, a ``lat,lon`` pair on both axes; a latitude
        with its longitude (the sibling field: ``dest_latitude`` with ``dest_longitude``) on both
        axes, and a lone latitude (longitude) when the request carries a longitude (latitude) near
        the device's. Anything else (a venue, a search centre, a place due east of the device) is
        ``coordinates``."""
        assert self.det._geo is not None
        lat, lon, dlat, dlon, _ = self.det._geo
        near: dict[tuple[str, str, str | None], bool] = {}
        for loc, key, kc, hit, _enc in self.coordinates:
            near[(_coordinate_stem(loc, key), _coordinate_stem(normalize_key(key), ""), kc)] = _near(
                kc, hit, lat, lon, dlat, dlon
            )
        other = {"lat": "lon", "lon": "lat"}
        for loc, key, kc, hit, enc in self.coordinates:
            stem = (_coordinate_stem(loc, key), _coordinate_stem(normalize_key(key), ""))
            mine = near[(*stem, kc)]
            if kc in other:
                partner = near.get((*stem, other[kc]))
                if partner is not None:
                    mine = mine and partner
                else:
                    mine = mine and (self.lon_hit if kc == "lat" else self.lat_hit) is not None
            self.add("location" if mine else "coordinates", loc, enc, "pattern", mask(hit))

    # -- request → fields --------------------------------------------------------------------

    def request_fields(self, req: HttpRequestData) -> Iterator[_Field]:
        try:
            parts = url_parts(req.url)
            host = parts.hostname or ""
            path, query = parts.path, parts.query
        except ValueError:  # malformed URL (bad port, brackets): scan it as text
            host, path, query = "", req.url, ""
        if host:
            yield "host", "", host
        prev = ""
        for seg in path.split("/"):
            if seg:
                s = unquote(seg) if "%" in seg else seg  # unquote's own shortcut, without the call
                yield "path", prev, s
                prev = s
        if query:
            for k, v in query_pairs(query):
                query_place = f"query:{k[:64]}"
                yield query_place, "", k
                yield query_place, k, v
        places = self.det._header_places
        for k, v in req.headers:
            place = places.get(k)
            if place is None:  # "" for a header not scanned; header names repeat (issue 15)
                lk = k.lower()
                place = "cookie" if lk == "cookie" else "" if lk in _UNSCANNED_HEADERS else f"header:{k[:64]}"
                if len(places) < 4096:
                    places[k] = place
            if place == "cookie":
                for item in v.split(";"):
                    name, _, val = item.strip().partition("=")
                    if name or val:
                        # Cookie values are commonly URL-encoded for transport (like query values).
                        yield f"cookie:{name[:64]}", name, unquote(val) if "%" in val else val
            elif place:
                yield place, k, v
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


_UNSCANNED_HEADERS = frozenset({"content-length", "host", "accept-encoding", "connection"})
_AXIS_SUFFIXES = ("latitude", "longitude", "lat", "lng", "lon", "long")


def _coordinate_stem(text: str, key: str) -> str:
    """``text`` without its trailing ``key`` (a place without its field name), or a normalised key
    without its axis (``destlatitude`` → ``dest``): what a latitude and its longitude share."""
    if key:
        return text[: -len(key)] if text.endswith(key) else text
    for suffix in _AXIS_SUFFIXES:
        if text.endswith(suffix):  # latitude pairs with longitude, lat with lng/lon/long
            return text[: -len(suffix)] + ("/" if len(suffix) > 4 else "")
    return text


def _near(kc: str | None, value: str, lat: float, lon: float, dlat: float, dlon: float) -> bool:
    """Whether a coordinate (a ``lat,lon`` pair, or one axis) is within the tolerance on its axes."""
    try:
        if kc == "latlon":
            pair = _LATLON_PAIR.fullmatch(value)
            return (
                pair is not None
                and abs(float(pair.group(1)) - lat) <= dlat
                and abs(float(pair.group(2)) - lon) <= dlon
            )
        x = float(value)
    except ValueError:
        return False
    return abs(x - lat) <= dlat if kc == "lat" else abs(x - lon) <= dlon


def _nest(loc: str, sub: str) -> str:
    return f"{loc}:{sub}" if sub else loc


def _join(outer: str, inner: str) -> str:
    if not outer:
        return inner
    return outer if inner == "plain" else f"{outer}+{inner}"
