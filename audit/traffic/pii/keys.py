"""Key vocabularies: which request keys name which data type (normalised with :func:`normalize_key`)."""

from __future__ import annotations

import re

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
