"""Traffic that is not the app's: local-network noise and well-known OS background traffic.

The one classifier (issue 12, points 2 and 3) used by ``audit destinations``, the graph and the
report. It looks only at what a destination is (IP, port, transport, host name), never at which
app a capture was labelled with, so a device-wide capture and a per-app one are judged alike.

* **local**: traffic that never leaves the network segment and goes to no server: limited
  broadcast (255.255.255.255), directed broadcast of a private /24 (``192.168.1.255``: the /24 is
  assumed, the capture does not say the netmask), multicast, link-local addresses, the unspecified
  address, and the discovery and configuration protocols on the LAN (mDNS UDP 5353, SSDP UDP 1900,
  LLMNR 5355, DHCP 67/68, DHCPv6 546/547, NetBIOS 137/138) when the address is not public. An
  unanswered broadcast is not a destination an app "contacted".
* **os**: servers Android and the phone vendors' systems contact on their own: connectivity
  checks, time synchronisation (NTP, UDP 123, to any server), OS and Play-services updates and
  check-in, push channels and safe browsing. A capture labelled with an app holds them whenever it
  was taken device-wide; they are marked, not credited to the app. An app may call such a host
  itself, so a destination whose flows are tied to the app by per-app evidence (``app-metadata`` or
  ``proxy`` attribution) is the app's, not background.

The table below is ours, from the vendors' public documentation and the names seen in captures of
stock devices; it lists the names, not every server of those companies (``www.google.com`` is only
OS traffic on the connectivity-check path ``/generate_204``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from audit.names import ip_scope, normalize_host, parse_ip

__all__ = [
    "BACKGROUND_KINDS",
    "CHECK_PATHS",
    "OS_HOSTS",
    "Background",
    "classify",
    "local_reason",
    "os_reason",
]

#: ``Destination.background`` values.
BACKGROUND_KINDS = ("local", "os")


@dataclass(frozen=True)
class Background:
    """Why a destination is not the app's own traffic."""

    kind: str
    """One of :data:`BACKGROUND_KINDS`."""
    reason: str
    """In words: ``mDNS``, ``broadcast``, ``connectivity check (Android)`` …"""


#: UDP/TCP ports of LAN discovery and configuration protocols, and what they are.
LOCAL_PORTS: dict[int, str] = {
    5353: "mDNS",
    1900: "SSDP",
    5355: "LLMNR",
    67: "DHCP",
    68: "DHCP",
    546: "DHCPv6",
    547: "DHCPv6",
    137: "NetBIOS",
    138: "NetBIOS",
}

#: Well-known multicast groups, named.
_GROUPS = {
    "224.0.0.251": "mDNS",
    "ff02::fb": "mDNS",
    "239.255.255.250": "SSDP",
    "ff02::c": "SSDP",
    "224.0.0.252": "LLMNR",
    "ff02::1:3": "LLMNR",
    "ff02::1:2": "DHCPv6",
}

#: Paths that make a request to a general-purpose host a connectivity check.
CHECK_PATHS = ("/generate_204", "/gen_204")

#: (name, what it is): a name matches itself and every name under it.
OS_HOSTS: tuple[tuple[str, str], ...] = (
    # connectivity checks (captive-portal detection)
    ("connectivitycheck.gstatic.com", "connectivity check (Android)"),
    ("connectivitycheck.android.com", "connectivity check (Android)"),
    ("clients1.google.com", "connectivity check (Android)"),
    ("clients3.google.com", "connectivity check (Android)"),
    ("clients4.google.com", "connectivity check (Android)"),
    ("connect.rom.miui.com", "connectivity check (Xiaomi)"),
    ("connectivitycheck.platform.hicloud.com", "connectivity check (Huawei)"),
    ("connectivitycheck.cbg-app.huawei.com", "connectivity check (Huawei)"),
    ("conn1.oppomobile.com", "connectivity check (OPPO)"),
    ("conn2.oppomobile.com", "connectivity check (OPPO)"),
    ("wifi.vivo.com.cn", "connectivity check (vivo)"),
    # time
    ("time.android.com", "time sync"),
    ("time.google.com", "time sync"),
    ("pool.ntp.org", "time sync"),
    # OS and Play services: check-in, updates, push, safe browsing
    ("android.clients.google.com", "Play services check-in"),
    ("android.googleapis.com", "Play services check-in"),
    ("play.googleapis.com", "Play services"),
    ("play-fe.googleapis.com", "Play services"),
    ("digitalassetlinks.googleapis.com", "Android app links verification"),
    ("mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("mtalk4.google.com", "push (Firebase Cloud Messaging)"),
    ("alt1-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt2-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt3-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt4-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt5-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt6-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt7-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("alt8-mtalk.google.com", "push (Firebase Cloud Messaging)"),
    ("safebrowsing.googleapis.com", "safe browsing"),
    ("safebrowsing.google.com", "safe browsing"),
    ("ota.googlezip.net", "OS update (Android)"),
    ("update.miui.com", "OS update (Xiaomi)"),
    ("api.xmpush.xiaomi.com", "push (Xiaomi)"),
    ("resolver.msg.xiaomi.net", "push (Xiaomi)"),
    ("query.hicloud.com", "OS update (Huawei)"),
    ("push.hicloud.com", "push (Huawei)"),
    ("fota-cloud-dn.ospserver.net", "OS update (Samsung)"),
    ("push.samsungosp.com", "push (Samsung)"),
)

_BY_NAME = dict(OS_HOSTS)


def local_reason(ip: str | None, port: int | None = None) -> str | None:
    """Why traffic to ``ip`` (server port ``port``) stays on the local network, or None."""
    if not ip:
        return None
    addr = parse_ip(ip)
    if addr is None:
        return None
    text = str(addr)
    if text in _GROUPS:
        return _GROUPS[text]
    if isinstance(addr, ipaddress.IPv4Address):
        if text == "255.255.255.255":
            return "broadcast"
        if text == "0.0.0.0":
            return "unspecified address"
        if ip_scope(text) == "private" and text.endswith(".255"):
            return "broadcast"  # directed broadcast of a private /24 (the common home and office LAN)
    elif addr.is_unspecified:
        return "unspecified address"
    scope = ip_scope(text)
    if scope == "multicast":
        return "multicast"
    if scope == "link-local":
        return LOCAL_PORTS.get(port or -1, "link-local")
    if port in LOCAL_PORTS and scope != "public":
        return LOCAL_PORTS[port]
    return None


def os_reason(
    names: Iterable[str | None], port: int | None = None, protocols: Iterable[str] = ()
) -> str | None:
    """What well-known OS service one of ``names`` is (a name matches itself and every name under
    it), or ``time sync`` for NTP (UDP 123) to any server; None when it is none of them."""
    for name in names:
        h = normalize_host(name)
        if h is not None and len(h) > 253:  # no DNS name is longer (RFC 1035): hostile, and not ours to walk
            continue
        while h:
            if h in _BY_NAME:
                return _BY_NAME[h]
            _, _, h = h.partition(".")
    if port == 123 and (not protocols or set(protocols) & {"udp", "ntp"}):
        return "time sync"
    return None


def classify(
    *,
    ip: str | None,
    port: int | None,
    names: Iterable[str | None] = (),
    protocols: Iterable[str] = (),
    attribution: Iterable[str] = (),
    check_path_only: bool = False,
) -> Background | None:
    """Local noise first (it never reaches a server), then OS background traffic; None for
    traffic that may be the app's. ``attribution``: how the destination's flows are tied to the
    app; any per-app evidence (not only ``label``) makes it the app's, never background.
    ``check_path_only``: every flow asked for a connectivity-check path (:data:`CHECK_PATHS`)."""
    local = local_reason(ip, port)
    if local is not None:
        return Background("local", local)
    if set(attribution) - {"label"}:
        return None
    protocols = tuple(protocols)
    reason = os_reason(names, port, protocols)
    if reason is None and check_path_only:
        reason = "connectivity check (Android)"
    return Background("os", reason) if reason is not None else None
