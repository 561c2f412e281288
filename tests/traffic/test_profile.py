"""Device profile loading: TOML/JSON, validation, one-line errors that never echo a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.errors import ConfigError
from audit.traffic.profile import DeviceProfile, GeoPoint, load_profile, profile_from_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "device.toml"


def test_example_profile_loads() -> None:
    p = load_profile(EXAMPLE)
    assert p.imei == "358240051111110"
    assert p.imei2 == "490154203237518"
    assert p.phone == ("+4915112345678", "015112345678")
    assert p.location == GeoPoint(52.520008, 13.404954, 1000.0)
    assert p.mcc_mnc == "26201" and p.carrier == "Telekom.de"
    assert p.custom == {"user_id": "u-7f3a9c21e8"}
    assert not p.is_empty()


def test_json_profile_with_gaid_alias_and_scalar_lists(tmp_path: Path) -> None:
    f = tmp_path / "dev.json"
    f.write_text(
        json.dumps(
            {
                "gaid": "38400000-8cf0-11bd-b23e-10b96e40000d",
                "email": "a@b.example",
                "imsi": "262011234567890",
            }
        )
    )
    p = load_profile(f)
    assert p.aaid == "38400000-8cf0-11bd-b23e-10b96e40000d"
    assert p.email == ("a@b.example",)
    assert p.imsi == "262011234567890"


def test_empty_profile_is_empty() -> None:
    assert profile_from_dict({}).is_empty()
    assert DeviceProfile().is_empty()


def test_profile_is_hashable_and_frozen() -> None:
    p = profile_from_dict({"imei": "358240051111110", "custom": {"x": "yyyyyy"}})
    hash(p)
    with pytest.raises(AttributeError):
        p.imei = "1"  # type: ignore[misc]


SECRET = "358240051111119"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"imei": "35824005111"}, "'imei' must be 14-16 digits"),
        ({"imei": "abc" + SECRET}, "'imei' must be 14-16 digits"),
        ({"wifi_mac": SECRET}, "'wifi_mac' must be a MAC address"),
        ({"android_id": SECRET + "zz"}, "'android_id'"),
        ({"aaid": SECRET}, "'aaid' must be a UUID"),
        ({"phone": [SECRET + "12345"]}, "'phone' must be phone numbers"),
        ({"email": [SECRET]}, "'email' must be e-mail addresses"),
        ({"installed_app_markers": [SECRET]}, "Android package names"),
        ({"imeii": SECRET}, "unknown key(s) 'imeii'"),
        ({"sim": {"imsii": SECRET}}, "unknown key(s) in [sim]"),
        ({"imsi": "262011234567890", "sim": {"imsi": "262011234567890"}}, "both at top level and in [sim]"),
        ({"location": {"lat": 95.0, "lon": 1.0}}, "lat must be within"),
        ({"location": {"lat": 52.0}}, "needs 'lon'"),
        ({"location": {"lat": "52", "lon": 13}}, "'lat' must be a number"),
        ({"location": {"lat": 52, "lon": 13, "tolerance_m": 0}}, "tolerance_m"),
        ({"custom": {"bad name!": SECRET}}, "custom name"),
        ({"custom": [SECRET]}, "'custom' must be a table"),
        ({"email": {"a": SECRET}}, "'email' must be a string or a list"),
        ({"serial": True}, "'serial' must be a string"),
        ({"aaid": "38400000-8cf0-11bd-b23e-10b96e40000d", "gaid": SECRET}, "either 'aaid' or 'gaid'"),
    ],
)
def test_invalid_profiles_give_one_line_errors_without_values(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        profile_from_dict(doc, source="dev.toml")
    msg = str(e.value)
    assert msg.startswith("dev.toml: ")
    assert needle in msg
    assert "\n" not in msg
    assert SECRET not in msg


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("dev.toml", b'imei = "358240051111110\n', "invalid TOML"),
        ("dev.json", b'{"imei": ', "invalid JSON"),
        ("dev.json", b"[1, 2]", "top level must be a table"),
        ("dev.toml", b"\xff\xfe\x00garbage", "not UTF-8"),
        ("dev.yaml", b"imei: 1", "must be a .toml or .json"),
        ("dev.json", b"[" * 100_000 + b"]" * 100_000, "dev.json: "),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert needle in str(e.value)
    assert str(f) in str(e.value)
    assert "358240051111110" not in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read device profile"):
        load_profile(tmp_path / "nope.toml")
