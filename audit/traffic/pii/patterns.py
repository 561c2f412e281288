"""Pattern detectors: data types recognised without a device profile (e-mail, IMEI, MAC, coordinates …)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from audit.traffic.pii.values import luhn_ok

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
