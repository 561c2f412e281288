"""Permissions → data kinds."""

from __future__ import annotations

import pytest

from audit.models import DataAccess
from audit.static.permissions import DATA_KINDS, PERMISSION_DATA, data_access

A = "android.permission."


@pytest.mark.parametrize(
    ("permission", "kinds"),
    [
        (A + "ACCESS_FINE_LOCATION", {"location"}),
        (A + "ACCESS_BACKGROUND_LOCATION", {"location"}),
        (A + "READ_CONTACTS", {"contacts"}),
        (A + "READ_PHONE_STATE", {"phone_identity"}),
        (A + "READ_PHONE_NUMBERS", {"phone_identity"}),
        (A + "CAMERA", {"camera"}),
        (A + "RECORD_AUDIO", {"microphone"}),
        (A + "READ_SMS", {"sms"}),
        (A + "READ_CALL_LOG", {"call_log"}),
        (A + "READ_CALENDAR", {"calendar"}),
        (A + "GET_ACCOUNTS", {"accounts"}),
        (A + "READ_EXTERNAL_STORAGE", {"storage"}),
        (A + "READ_MEDIA_IMAGES", {"storage"}),
        (A + "BODY_SENSORS", {"sensors", "health"}),
        (A + "ACTIVITY_RECOGNITION", {"activity_recognition"}),
        ("android.permission.health.READ_HEART_RATE", {"health"}),
        (A + "BLUETOOTH_SCAN", {"nearby_devices"}),
        (A + "NEARBY_WIFI_DEVICES", {"nearby_devices", "wifi_state"}),
        (A + "ACCESS_WIFI_STATE", {"wifi_state"}),
        (A + "QUERY_ALL_PACKAGES", {"installed_apps"}),
        (A + "BIND_NOTIFICATION_LISTENER_SERVICE", {"notifications"}),
        ("com.google.android.gms.permission.AD_ID", {"advertising_id"}),
    ],
)
def test_single_permission(permission: str, kinds: set[str]) -> None:
    result = data_access([permission])
    assert {d.type for d in result} == kinds
    assert all(d.permissions == (permission,) for d in result)


@pytest.mark.parametrize(
    "permission",
    [
        "ACCESS_FINE_LOCATION",  # short names could be any app's custom permission
        A + "INTERNET",
        A + "POST_NOTIFICATIONS",  # lets the app act, reveals nothing
        "com.example.permission.C2D_MESSAGE",
        "",
    ],
)
def test_ignored(permission: str) -> None:
    assert data_access([permission]) == ()


def test_grouping_sorting_and_duplicates() -> None:
    perms = [
        A + "ACCESS_COARSE_LOCATION",
        A + "CAMERA",
        A + "ACCESS_FINE_LOCATION",
        A + "ACCESS_FINE_LOCATION",
        " " + A + "READ_CONTACTS ",
        A + "INTERNET",
    ]
    assert data_access(perms) == (
        DataAccess("camera", (A + "CAMERA",)),
        DataAccess("contacts", (A + "READ_CONTACTS",)),
        DataAccess("location", (A + "ACCESS_COARSE_LOCATION", A + "ACCESS_FINE_LOCATION")),
    )
    # Order of the input does not matter.
    assert data_access(reversed(perms)) == data_access(perms)
    assert data_access([]) == ()


def test_table_uses_full_names_and_required_kinds() -> None:
    required = {"location", "contacts", "phone_identity", "camera", "microphone", "sms", "call_log", "calendar",
                "accounts", "storage", "sensors"}  # fmt: skip
    assert required <= set(DATA_KINDS)
    for kind, perms in DATA_KINDS.items():
        assert perms, kind
        assert len(perms) == len(set(perms)), kind
        for p in perms:
            assert p.count(".") >= 2 and p.rsplit(".", 1)[1].isupper(), p
    assert all(PERMISSION_DATA[p] == tuple(sorted(PERMISSION_DATA[p])) for p in PERMISSION_DATA)
