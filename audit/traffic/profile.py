"""The device profile: identifiers and personal data of the test device, so that traffic can be
searched for the values themselves (``confidence="known"`` findings).

Format (TOML or JSON, chosen by file extension) is documented in ``docs/device-profile.md``;
an example lives in ``docs/examples/device.toml``. Error messages never repeat a value from the
file: a profile holds the very data this tool is meant to protect.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import ConfigError

__all__ = ["DeviceProfile", "GeoPoint", "load_profile", "profile_from_dict"]

_HEX = re.compile(r"[0-9a-fA-F]+")
_MAC = re.compile(r"[0-9a-fA-F]{2}([:\-]?)(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}")
_UUIDISH = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_PACKAGE = re.compile(r"[A-Za-z][\w]*(?:\.[A-Za-z_][\w]*)+")
_CUSTOM_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True)
class GeoPoint:
    """Where the device is (or was, during the capture)."""

    lat: float
    lon: float
    tolerance_m: float = 1000.0
    """A coordinate in traffic within this distance (per axis) of the point counts as the device's."""


@dataclass(frozen=True)
class DeviceProfile:
    """Known values of the test device. Every field is optional; empty means "not known"."""

    android_id: str | None = None
    """Settings.Secure.ANDROID_ID (16 hex digits)."""
    aaid: str | None = None
    """Google advertising ID (GAID/AAID), a UUID."""
    oaid: str | None = None
    """Open Anonymous Device Identifier (Huawei/MSA), UUID or hex."""
    imei: str | None = None
    imei2: str | None = None
    """Second slot IMEI."""
    meid: str | None = None
    serial: str | None = None
    """Build serial number."""
    wifi_mac: str | None = None
    bt_mac: str | None = None
    phone: tuple[str, ...] = ()
    """Phone number in every form the analyst knows: E.164 (``+4915112345678``) and national
    (``015112345678``). Separator-free and ``00``-prefixed forms of E.164 numbers are derived."""
    email: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    """Account names on the device (Google account, app log-ins) that are not e-mail addresses
    listed under ``email``."""
    location: GeoPoint | None = None
    mcc_mnc: str | None = None
    """SIM operator (``26201``)."""
    carrier: str | None = None
    """Carrier name as Android reports it (``Telekom.de``)."""
    iccid: str | None = None
    imsi: str | None = None
    installed_app_markers: tuple[str, ...] = ()
    """Package names of other apps installed on the device, to detect app-list harvesting."""
    custom: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Any other value to look for: name → value (reported as data type ``custom:<name>``)."""

    def is_empty(self) -> bool:
        return not any(
            (
                self.android_id, self.aaid, self.oaid, self.imei, self.imei2, self.meid, self.serial,
                self.wifi_mac, self.bt_mac, self.phone, self.email, self.accounts, self.location,
                self.mcc_mnc, self.carrier, self.iccid, self.imsi, self.installed_app_markers, self.custom,
            )
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

_SCALARS = ("android_id", "aaid", "oaid", "imei", "imei2", "meid", "serial", "wifi_mac", "bt_mac")
_LISTS = ("phone", "email", "accounts", "installed_app_markers")
_SIM = ("mcc_mnc", "carrier", "iccid", "imsi")
_TOP = set(_SCALARS) | set(_LISTS) | set(_SIM) | {"location", "sim", "custom", "name", "description", "gaid"}


def load_profile(path: str | Path) -> DeviceProfile:
    """Read a device profile from ``.toml`` or ``.json``.

    Raises :class:`ConfigError` with a one-line message naming the file and the problem (never the
    offending value).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{p}: device profile must be a .toml or .json file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read device profile ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8")
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: device profile is not UTF-8 text") from e
    except tomllib.TOMLDecodeError as e:
        # tomllib messages carry line/column only, no document content.
        raise ConfigError(f"{p}: invalid TOML ({e})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: invalid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    except RecursionError as e:
        raise ConfigError(f"{p}: device profile is nested too deeply") from e
    return profile_from_dict(data, source=str(p))


def profile_from_dict(data: Any, source: str = "device profile") -> DeviceProfile:
    """Validate a parsed profile document (the TOML/JSON structure) into a :class:`DeviceProfile`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a table/object")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(_safe_name(k) for k in unknown)}")
    sim = data.get("sim", {})
    if not isinstance(sim, dict):
        raise ConfigError(f"{source}: 'sim' must be a table")
    unknown = sorted(set(sim) - set(_SIM))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [sim]: {', '.join(_safe_name(k) for k in unknown)}")
    for k in _SIM:
        if k in data and k in sim:
            raise ConfigError(f"{source}: '{k}' given both at top level and in [sim]")

    kw: dict[str, Any] = {}
    for k in _SCALARS:
        kw[k] = _scalar(data.get(k), k, source)
    if kw["aaid"] is None:
        kw["aaid"] = _scalar(data.get("gaid"), "gaid", source)
    elif data.get("gaid") is not None:
        raise ConfigError(f"{source}: give either 'aaid' or 'gaid' (same identifier), not both")
    for k in _SIM:
        kw[k] = _scalar(sim.get(k, data.get(k)), k, source)
    for k in _LISTS:
        kw[k] = _string_list(data.get(k), k, source)
    kw["location"] = _location(data.get("location"), source)
    kw["custom"] = _custom(data.get("custom"), source)
    _check_formats(kw, source)
    return DeviceProfile(**kw)


def _safe_name(key: object) -> str:
    s = str(key)
    return repr(s[:40]) if s.isprintable() else "<unprintable key>"


def _scalar(v: Any, name: str, source: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ConfigError(f"{source}: '{name}' must be a string")
    s = str(v).strip()
    return s or None


def _string_list(v: Any, name: str, source: str) -> tuple[str, ...]:
    if v is None:
        return ()
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list):
        raise ConfigError(f"{source}: '{name}' must be a string or a list of strings")
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{source}: '{name}' item {i + 1} must be a string")
        s = item.strip()
        if s and s not in out:
            out.append(s)
    return tuple(out)


def _location(v: Any, source: str) -> GeoPoint | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ConfigError(f"{source}: 'location' must be a table with lat, lon (and tolerance_m)")
    unknown = sorted(set(v) - {"lat", "lon", "tolerance_m"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [location]: {', '.join(_safe_name(k) for k in unknown)}"
        )
    nums: dict[str, float] = {}
    for k in ("lat", "lon", "tolerance_m"):
        x = v.get(k)
        if x is None:
            if k == "tolerance_m":
                continue
            raise ConfigError(f"{source}: [location] needs '{k}'")
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ConfigError(f"{source}: [location] '{k}' must be a number")
        nums[k] = float(x)
    if not -90 <= nums["lat"] <= 90 or not -180 <= nums["lon"] <= 180:
        raise ConfigError(f"{source}: [location] lat must be within ±90 and lon within ±180")
    tol = nums.get("tolerance_m", 1000.0)
    if not 1 <= tol <= 100_000:
        raise ConfigError(f"{source}: [location] tolerance_m must be between 1 and 100000 metres")
    return GeoPoint(nums["lat"], nums["lon"], tol)


def _custom(v: Any, source: str) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"{source}: 'custom' must be a table of name = value")
    out: dict[str, str] = {}
    for k, x in v.items():
        if not isinstance(k, str) or not _CUSTOM_NAME.fullmatch(k):
            raise ConfigError(f"{source}: custom name {_safe_name(k)} must be 1-64 of A-Z a-z 0-9 _ . -")
        s = _scalar(x, f"custom.{k}", source)
        if s is not None:
            out[k] = s
    return out


def _check_formats(kw: dict[str, Any], source: str) -> None:
    """Shape checks catch values pasted into the wrong field; messages never echo the value."""

    def bad(name: str, what: str) -> ConfigError:
        return ConfigError(f"{source}: '{name}' must be {what}")

    for k in ("imei", "imei2"):
        if kw[k] is not None and not (kw[k].isdigit() and 14 <= len(kw[k]) <= 16):
            raise bad(k, "14-16 digits")
    if kw["meid"] is not None and not (_HEX.fullmatch(kw["meid"]) and 14 <= len(kw["meid"]) <= 18):
        raise bad("meid", "14-18 hex digits")
    if kw["android_id"] is not None and not (
        _HEX.fullmatch(kw["android_id"]) and 8 <= len(kw["android_id"]) <= 32
    ):
        raise bad("android_id", "8-32 hex digits (16 on current Android)")
    for k in ("aaid", "oaid"):
        if kw[k] is not None and not (
            _UUIDISH.fullmatch(kw[k]) or (_HEX.fullmatch(kw[k]) and len(kw[k]) >= 16)
        ):
            raise bad(k, "a UUID or a hex string")
    for k in ("wifi_mac", "bt_mac"):
        if kw[k] is not None and not _MAC.fullmatch(kw[k]):
            raise bad(k, "a MAC address (12 hex digits, optionally separated by ':' or '-')")
    if kw["imsi"] is not None and not (kw["imsi"].isdigit() and 6 <= len(kw["imsi"]) <= 15):
        raise bad("imsi", "6-15 digits")
    if kw["iccid"] is not None and not (re.fullmatch(r"\d{18,22}[Ff]?", kw["iccid"])):
        raise bad("iccid", "18-22 digits")
    if kw["mcc_mnc"] is not None and not re.fullmatch(r"\d{3}-?\d{2,3}", kw["mcc_mnc"]):
        raise bad("mcc_mnc", "MCC+MNC digits such as 26201")
    for i, ph in enumerate(kw["phone"]):
        digits = re.sub(r"\D", "", ph)
        if not (6 <= len(digits) <= 15) or not re.fullmatch(r"\+?[\d\s\-().]+", ph):
            raise bad("phone", f"phone numbers of 6-15 digits (item {i + 1} is not)")
    for i, em in enumerate(kw["email"]):
        if "@" not in em or len(em) < 5:
            raise bad("email", f"e-mail addresses (item {i + 1} is not)")
    for i, pkg in enumerate(kw["installed_app_markers"]):
        if not _PACKAGE.fullmatch(pkg):
            raise bad("installed_app_markers", f"Android package names (item {i + 1} is not)")
