"""pcapng time stamps per interface (issue 12 point 5) and PCAPdroid's per-app pcapng (issue 17)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from audit.store import Store
from audit.traffic.importers import capture_apps, import_file
from audit.traffic.importers.pcapng import CaptureApp, PcapngReader
from tests.fixtures.captures.build_captures import (
    client_hello,
    dns_response,
    tcp_session,
    tls_record,
    udp_packet,
)
from tests.helpers.pcapng_build import App, epb, idb, pcapdroid, shb, uid_map
from tests.helpers.traffic import PHONE, T0, frames

MESSENGER = App(10123, "com.example.messenger", "Messenger")
MAPS = App(10200, "org.example.maps", "Maps")
MESSENGER_APP, MAPS_APP = (CaptureApp(a.uid, a.package, a.name) for a in (MESSENGER, MAPS))


def test_two_interfaces_with_microsecond_and_nanosecond_resolution() -> None:
    """Each packet's ticks are read in its own interface's unit: µs (default), ns (10^-9), 2^-20,
    and a per-interface offset in seconds; dpkt applied the first interface's unit to all."""
    t_us, t_ns, t_bin = T0 + 0.25, T0 + 1.123456789, T0 + 2.5
    data = (
        shb()
        + idb(1)  # if_tsresol absent: microseconds
        + idb(101, tsresol=9)  # nanoseconds
        + idb(101, tsresol=0x80 | 20, tsoffset=1_000_000_000)  # 2^-20 s units, 1e9 s offset
        + epb(0, int(round(t_us * 1e6)), b"\0" * 20)
        + epb(1, int(round(t_ns * 1e9)), b"\x45" + b"\0" * 19)
        + epb(2, int(round((t_bin - 1_000_000_000) * 2**20)), b"\x45" + b"\0" * 19)
        + epb(0, int(round((t_us + 1) * 1e6)), b"\0" * 20)
    )
    got = [ts for ts, _, _ in PcapngReader(io.BytesIO(data))]
    assert got[0] == pytest.approx(t_us, abs=1e-6)
    assert got[1] == pytest.approx(t_ns, abs=1e-6)
    assert got[2] == pytest.approx(t_bin, abs=1e-6)
    assert got[3] == pytest.approx(t_us + 1, abs=1e-6)


def test_two_interface_capture_imports_plausible_times(tmp_path: Path) -> None:
    """The same connection's packets alternate between a µs and a ns interface: its start and end
    are the real times, not the year 56326."""
    packets = frames(
        101,
        tcp_session(
            PHONE, 40001, "43.156.32.17", 443, T0, [tls_record(client_hello("a.example.cn"))], [b"x"]
        ),
    )
    blocks = [shb(), idb(101), idb(101, tsresol=9)]
    for i, (ts, frame) in enumerate(packets):
        blocks.append(epb(0, int(round(ts * 1e6)), frame) if i % 2 else epb(1, int(round(ts * 1e9)), frame))
    path = tmp_path / "two.pcapng"
    path.write_bytes(b"".join(blocks))
    store = Store()
    summary = import_file(path, store)
    assert summary.errors == ()
    ((_, conn),) = store.connections()
    assert conn.ts == pytest.approx(packets[0][0], abs=1e-6)
    assert conn.end_ts == pytest.approx(packets[-1][0], abs=1e-6)


def two_app_capture() -> bytes:
    """Two apps' TLS connections, a DNS answer asked by the messenger and one packet of unknown uid."""
    out: list[tuple[float, bytes, App | None]] = []
    for ts, frame in frames(
        101, [(T0, udp_packet("8.8.8.8", 53, PHONE, 5353, dns_response("a.example.cn", ["43.156.32.17"], 7)))]
    ):
        out.append((ts, frame, MESSENGER))
    for ts, frame in frames(
        101,
        tcp_session(
            PHONE, 40001, "43.156.32.17", 443, T0 + 1, [tls_record(client_hello("a.example.cn"))], [b"x"]
        ),
    ):
        out.append((ts, frame, MESSENGER))
    for ts, frame in frames(
        101,
        tcp_session(
            PHONE,
            40002,
            "157.240.17.35",
            443,
            T0 + 2,
            [tls_record(client_hello("tiles.example.org"))],
            [b"y"],
        ),
    ):
        out.append((ts, frame, MAPS))
    for ts, frame in frames(
        101,
        tcp_session(
            PHONE,
            40003,
            "198.51.100.7",
            443,
            T0 + 3,
            [tls_record(client_hello("unknown.example.net"))],
            [b"z"],
        ),
    ):
        out.append((ts, frame, None))
    return pcapdroid(out, [MESSENGER, MAPS])


def test_pcapdroid_uid_map_labels_each_connection_with_its_app(tmp_path: Path) -> None:
    path = tmp_path / "droid.pcapng"
    path.write_bytes(two_app_capture())
    store = Store()
    summary = import_file(path, store)
    assert summary.errors == ()
    got = {c.sni: (c.app, c.attribution) for _, c in store.connections() if c.sni}
    assert got == {
        "a.example.cn": ("com.example.messenger", "app-metadata"),
        "tiles.example.org": ("org.example.maps", "app-metadata"),
        "unknown.example.net": ("", "label"),
    }
    assert [(d["name"], d["app"]) for d in store.dns_records()] == [("a.example.cn", "com.example.messenger")]
    assert {(a.uid, a.package, a.name) for a in summary.apps} == {
        (10123, "com.example.messenger", "Messenger"), (10200, "org.example.maps", "Maps"),
    }  # fmt: skip
    # the case keeps them (inputs rows of kind capture-app), once even after --replace
    import_file(path, store, replace=True)
    assert capture_apps(store) == [MESSENGER_APP, MAPS_APP]
    rows = [(i["kind"], i["app"], i["notes"]) for i in store.inputs() if i["kind"] == "capture-app"]
    assert rows == [("capture-app", "com.example.messenger", ["uid 10123", "app name Messenger"]),
                    ("capture-app", "org.example.maps", ["uid 10200", "app name Maps"])]  # fmt: skip


def test_app_option_picks_one_app_and_keeps_the_others_labelled(tmp_path: Path) -> None:
    path = tmp_path / "droid.pcapng"
    path.write_bytes(two_app_capture())
    store = Store()
    import_file(path, store, app="org.example.maps")
    got = {c.sni: (c.app, c.attribution) for _, c in store.connections() if c.sni}
    assert got == {
        "a.example.cn": ("com.example.messenger", "app-metadata"),
        "tiles.example.org": ("org.example.maps", "app-metadata"),
        # tied to no app by the capture: only the analyst's label says whose it is
        "unknown.example.net": ("org.example.maps", "label"),
    }
    assert {c.sni for _, c in store.connections(app="org.example.maps")} == {
        "tiles.example.org",
        "unknown.example.net",
    }


def test_hostile_uid_map_blocks_are_ignored(tmp_path: Path) -> None:
    """Cut, empty, foreign-PEN and unmapped-uid blocks neither crash nor invent an app."""
    bad_pen = uid_map(1, "x", "y").replace((62652).to_bytes(4, "little"), (1).to_bytes(4, "little"))
    cut = uid_map(10123, "com.example.messenger", "M")[:20]
    cut = cut[:4] + (len(cut) + 4).to_bytes(4, "little") + cut[8:] + (len(cut) + 4).to_bytes(4, "little")
    frame = frames(
        101,
        tcp_session(
            PHONE, 40001, "43.156.32.17", 443, T0, [tls_record(client_hello("a.example.cn"))], [b"x"]
        ),
    )
    data = (
        shb()
        + idb(101)
        + bad_pen
        + cut
        + uid_map(5, "", "")
        + b"".join(
            epb(0, int(ts * 1e6), f, comment=c)
            for (ts, f), c in zip(frame, ["u-1", "u-999", "u-x", "u-5", "", "u-", "u-7", "u-8"], strict=False)
        )
    )
    path = tmp_path / "bad.pcapng"
    path.write_bytes(data)
    store = Store()
    import_file(path, store)
    assert [(c.app, c.attribution) for _, c in store.connections()] == [("", "label")]
