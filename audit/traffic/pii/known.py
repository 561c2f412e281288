"""Known values of a device profile, in every encoding apps use, compiled into one trie regex."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from audit.traffic.profile import DeviceProfile

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
