"""Every reading command on a case file holding hostile values of the right types (issue 15): times
no calendar holds (1e300), numbers at the 64-bit edge, negative counts, megabyte host names, strings
that are not what their column says. Formatters (report, destinations, graph, check, pii, diff,
CLI tables) never crash on what the store holds; times outside 2008-01-01..now+1 day are left out."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.destinations import list_destinations
from audit.enrich.geoip import Enricher
from audit.store import Store
from tests.helpers.output import strict_json

T0 = 1_718_703_000.0

HOSTILE_CONNECTIONS: list[dict[str, Any]] = [
    {"ts": 1e300, "end_ts": 1e308, "host": "a.example", "ip": "1.2.3.4", "port": 443, "bytes_out": 2**63 - 1,
     "bytes_in": 2**63 - 1},
    {"ts": -1e300, "host": "a.example", "ip": "1.2.3.4", "port": 443, "bytes_out": 2**63 - 1, "bytes_in": 5},
    {"ts": T0, "end_ts": -1e300, "host": "b.example", "ip": "x" * 1000, "port": 2**62, "bytes_out": -(2**63),
     "bytes_in": -(2**63), "status": -5, "method": "\x00"},
    {"ts": T0 + 1, "end_ts": T0 - 10, "host": "\x1b[2Jc.example\u202e", "ip": "::ffff:8.8.8.8", "port": -1,
     "bytes_out": -5, "bytes_in": -7, "query_keys": '["\\u0000", ""]'},
    {"ts": T0 + 2, "host": None, "ip": None, "port": None, "protocol": "", "tls": "weird", "source": "", "app": "\u202e"},
    {"ts": T0 + 3, "host": "y" * 100_000, "ip": "999.1.1.1", "port": 0, "query_keys": "[]"},
    {"ts": 0, "host": "", "ip": "", "port": 65536},
]  # fmt: skip


def hostile_case(db: Path) -> Path:
    Store(db).close()
    c = sqlite3.connect(db)
    for row in HOSTILE_CONNECTIONS:
        values = {"source": "har", "protocol": "https", "tls": "intercepted", "app": "", **row}
        c.execute(
            f"INSERT INTO connections({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )
    c.executescript(
        """
        INSERT INTO findings(connection_id, data_type, location, encoding, confidence, masked)
            VALUES (1, 'imei', 'query:imei', 'plain', 'known', '35••'), (3, '', '', '', '', '');
        INSERT INTO requests(connection_id, url, headers, body) VALUES (1, 'https://a.example/?imei=1', '[]', x'00');
        INSERT INTO requests(connection_id, url, headers, body) VALUES (3, '', '[]', x'');
        INSERT INTO dns(ts, app, source, name, qtype, answer) VALUES (1e300, '', 'pcap', 'b.example', 'A', '1.2.3.4');
        INSERT INTO dns(ts, app, source, name, qtype, answer) VALUES (-1e300, '', 'pcap', '', '', '');
        INSERT INTO inputs(kind, path, sha256, app, added_at) VALUES ('har', 'x.har', NULL, '', 1e300);
        INSERT INTO inputs(kind, path, sha256, app, added_at, notes) VALUES ('', '', '', '', -1e300, 'a note');
        """
    )
    c.commit()
    c.close()
    return db


@pytest.mark.parametrize(
    "args",
    [
        ["report", "-o", "{tmp}/r.html"], ["destinations", "--json"], ["destinations", "--csv"], ["destinations", "--table"],
        ["graph", "-o", "{tmp}/g.json"], ["graph", "-o", "{tmp}/g.graphml"], ["graph", "-o", "{tmp}/g.dot"],
        ["graph", "--receivers", "imei", "--json"], ["graph", "--paths-to", "country:US"], ["check", "--deny-country", "US"],
        ["pii", "--json"], ["pii", "--table"], ["dns", "--json"], ["dns", "--csv"], ["dns", "--table"],
    ],
)  # fmt: skip
def test_reading_commands_never_crash_on_hostile_values(tmp_path: Path, args: list[str]) -> None:
    db = hostile_case(tmp_path / "case.sqlite")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = CliRunner().invoke(main, [*args, "--db", str(db)])
    assert r.exit_code in (0, 3), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    if "--json" in args:
        strict_json(r.stdout)
    if args[0] == "report":
        html = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert "(invalid time)" in html  # the inputs row added "at" 1e300
        assert "a note" in html  # input notes are listed


def test_diff_of_hostile_cases(tmp_path: Path) -> None:
    db = hostile_case(tmp_path / "case.sqlite")
    r = CliRunner().invoke(main, ["diff", str(db), str(db), "--json"])
    assert r.exit_code == 0, r.output
    strict_json(r.stdout)


def test_implausible_times_are_left_out_of_time_computations(tmp_path: Path) -> None:
    db = hostile_case(tmp_path / "case.sqlite")
    with Store(db) as s:
        times = [t for t, *_ in s.connection_times()]
        rows = {d.host: d for d in list_destinations(s, enricher=Enricher([], embedded=False))}
    assert times == [T0, T0 + 1, T0 + 2, T0 + 3]
    a = rows["a.example"]  # both of its flows are at impossible times
    assert (a.first_seen, a.last_seen, a.flows) == (None, None, 2)
    assert a.bytes_out >= 2**64 - 2  # no integer overflow in the sum (a float sum past 2**53)
    b = rows["b.example"]  # a plausible start, an impossible end
    assert (b.first_seen, b.last_seen) == (T0, T0)
