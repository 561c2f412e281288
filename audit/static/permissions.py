"""Requested Android permissions → the kinds of personal data they give access to.

Full permission names only (``android.permission.ACCESS_FINE_LOCATION``): a bare ``ACCESS_FINE_LOCATION``
could be any app's custom permission. Sources: the Android ``Manifest.permission`` reference and the
Play services ``AD_ID`` permission. Normal permissions are listed when they reveal personal data
(Wi-Fi state gives nearby network names and the connected BSSID; ``GET_ACCOUNTS`` the account list).
Permissions that only let an app act (post notifications, place calls, draw overlays) are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audit.models import DataAccess

__all__ = [
    "DATA_KINDS",
    "DATA_KIND_TITLES",
    "PERMISSION_DATA",
    "PERMISSION_QUALIFIERS",
    "data_access",
    "data_access_labels",
]

_A = "android.permission."

#: Data kind → permissions giving access to it. A permission may appear under several kinds.
DATA_KINDS: Mapping[str, tuple[str, ...]] = {
    "location": (
        _A + "ACCESS_FINE_LOCATION",
        _A + "ACCESS_COARSE_LOCATION",
        _A + "ACCESS_BACKGROUND_LOCATION",
        _A + "ACCESS_MEDIA_LOCATION",  # location metadata of photos
    ),
    "contacts": (
        _A + "READ_CONTACTS",
        _A + "WRITE_CONTACTS",
        _A + "READ_PROFILE",
    ),
    "phone_identity": (
        _A + "READ_PHONE_STATE",  # IMEI/serial before Android 10, carrier, phone state
        _A + "READ_PHONE_NUMBERS",
        _A + "READ_PRIVILEGED_PHONE_STATE",
    ),
    "camera": (_A + "CAMERA",),
    "microphone": (
        _A + "RECORD_AUDIO",
        _A + "CAPTURE_AUDIO_OUTPUT",
    ),
    "sms": (
        _A + "READ_SMS",
        _A + "RECEIVE_SMS",
        _A + "SEND_SMS",
        _A + "RECEIVE_MMS",
        _A + "RECEIVE_WAP_PUSH",
        _A + "WRITE_SMS",
    ),
    "call_log": (
        _A + "READ_CALL_LOG",
        _A + "WRITE_CALL_LOG",
        _A + "PROCESS_OUTGOING_CALLS",
        _A + "ANSWER_PHONE_CALLS",
        "com.android.voicemail.permission.ADD_VOICEMAIL",
    ),
    "calendar": (
        _A + "READ_CALENDAR",
        _A + "WRITE_CALENDAR",
    ),
    "accounts": (
        _A + "GET_ACCOUNTS",
        _A + "GET_ACCOUNTS_PRIVILEGED",
        _A + "MANAGE_ACCOUNTS",
        _A + "USE_CREDENTIALS",
        _A + "AUTHENTICATE_ACCOUNTS",
    ),
    "storage": (
        _A + "READ_EXTERNAL_STORAGE",
        _A + "WRITE_EXTERNAL_STORAGE",
        _A + "MANAGE_EXTERNAL_STORAGE",
        _A + "READ_MEDIA_IMAGES",
        _A + "READ_MEDIA_VIDEO",
        _A + "READ_MEDIA_AUDIO",
        _A + "READ_MEDIA_VISUAL_USER_SELECTED",
    ),
    "sensors": (
        _A + "BODY_SENSORS",
        _A + "BODY_SENSORS_BACKGROUND",
        _A + "HIGH_SAMPLING_RATE_SENSORS",
    ),
    "activity_recognition": (
        _A + "ACTIVITY_RECOGNITION",
        "com.google.android.gms.permission.ACTIVITY_RECOGNITION",
    ),
    "health": (
        _A + "BODY_SENSORS",
        _A + "BODY_SENSORS_BACKGROUND",
        "android.permission.health.READ_HEART_RATE",
        "android.permission.health.READ_STEPS",
        "android.permission.health.READ_SLEEP",
        "android.permission.health.READ_EXERCISE",
        "android.permission.health.READ_WEIGHT",
        "android.permission.health.READ_BLOOD_PRESSURE",
        "android.permission.health.READ_BLOOD_GLUCOSE",
        "android.permission.health.READ_OXYGEN_SATURATION",
        "android.permission.health.READ_MENSTRUATION",
        "android.permission.health.READ_HEALTH_DATA_IN_BACKGROUND",
    ),
    "nearby_devices": (
        _A + "BLUETOOTH",
        _A + "BLUETOOTH_ADMIN",
        _A + "BLUETOOTH_SCAN",
        _A + "BLUETOOTH_CONNECT",
        _A + "NEARBY_WIFI_DEVICES",
        _A + "UWB_RANGING",
    ),
    "wifi_state": (
        _A + "ACCESS_WIFI_STATE",  # SSID/BSSID of the connected network, scan results
        _A + "NEARBY_WIFI_DEVICES",
    ),
    "installed_apps": (
        _A + "QUERY_ALL_PACKAGES",
        _A + "GET_TASKS",
        _A + "PACKAGE_USAGE_STATS",
    ),
    "notifications": (_A + "BIND_NOTIFICATION_LISTENER_SERVICE",),  # every notification of every app
    "advertising_id": (
        "com.google.android.gms.permission.AD_ID",
        _A + "ACCESS_ADSERVICES_AD_ID",
        _A + "ACCESS_ADSERVICES_ATTRIBUTION",
        _A + "ACCESS_ADSERVICES_TOPICS",
    ),
    "accessibility": (_A + "BIND_ACCESSIBILITY_SERVICE",),  # reads the screen of other apps
    "screen_content": (
        _A + "CAPTURE_VIDEO_OUTPUT",
        _A + "FOREGROUND_SERVICE_MEDIA_PROJECTION",
    ),
}

#: Permission → data kinds (derived from :data:`DATA_KINDS`).
PERMISSION_DATA: Mapping[str, tuple[str, ...]] = {
    perm: tuple(sorted(k for k, perms in DATA_KINDS.items() if perm in perms))
    for perm in sorted({p for perms in DATA_KINDS.values() for p in perms})
}


def data_access(permissions: Iterable[str]) -> tuple[DataAccess, ...]:
    """The data kinds the given permissions reach, sorted by kind, each with its sorted permissions.

    Unknown and custom permissions are ignored; duplicates and surrounding whitespace are tolerated."""
    by_kind: dict[str, set[str]] = {}
    for raw in permissions:
        if not isinstance(raw, str):
            continue
        perm = raw.strip()
        for kind in PERMISSION_DATA.get(perm, ()):
            by_kind.setdefault(kind, set()).add(perm)
    return tuple(DataAccess(type=k, permissions=tuple(sorted(v))) for k, v in sorted(by_kind.items()))


#: How a data kind reads in a sentence ("+ SMS", "+ Wi-Fi state"); kinds not listed read as their name.
DATA_KIND_TITLES: Mapping[str, str] = {
    "sms": "SMS", "call_log": "call log", "phone_identity": "phone identity (IMEI, phone number)",
    "sensors": "body sensors", "activity_recognition": "activity recognition", "nearby_devices": "nearby devices",
    "wifi_state": "Wi-Fi state", "installed_apps": "installed apps", "advertising_id": "advertising ID",
    "screen_content": "screen content", "accessibility": "accessibility (the screen of other apps)",
    "notifications": "notifications of every app",
}  # fmt: skip

#: Permissions that say *how much* of a kind the app gets: the kind's label takes the qualifier.
PERMISSION_QUALIFIERS: Mapping[str, str] = {
    _A + "ACCESS_FINE_LOCATION": "fine",
    _A + "ACCESS_COARSE_LOCATION": "coarse",
    _A + "ACCESS_BACKGROUND_LOCATION": "background",
    _A + "ACCESS_MEDIA_LOCATION": "in photos",
}


def data_access_labels(permissions: Iterable[str]) -> set[str]:
    """The data the permissions reach, as people say it: ``location (fine)``, ``location
    (background)``, ``SMS``, ``contacts`` … (what ``audit diff`` compares)."""
    out: set[str] = set()
    for access in data_access(permissions):
        title = DATA_KIND_TITLES.get(access.type, access.type.replace("_", " "))
        qualified = [PERMISSION_QUALIFIERS[p] for p in access.permissions if p in PERMISSION_QUALIFIERS]
        out.update([f"{title} ({q})" for q in qualified] or [title])
    return out
