"""Time you can trust (issue 12 point 5): traffic times before 2008-01-01 or more than a day after
the import are flagged in the input's notes and left out of the timeline and of first/last seen; no
value (0, 1e300, negative, NaN) crashes a reading command. Through a real flow file and a real HAR."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mitmproxy import dns as mdns
from mitmproxy.test import tflow

from audit.cli import main
from audit.models import EARLIEST_TIME
from audit.report.data import collect_report
from audit.store import Store
from tests.helpers.output import strict_json
from tests.helpers.traffic import entry, https_flow, write_flows, write_har

GOOD = 1_700_000_000.0
APP = "com.example.app"


def odd_flows(path: Path) -> Path:
    """Good flows, flows at 0, 1e300, -5 and NaN, a 2007 clock, and a DNS lookup at 0."""
    flows = []
    for host, ts in [("good.example.net", GOOD), ("zero.example.net", 0.0), ("huge.example.net", 1e300),
                     ("negative.example.net", -5.0), ("y2007.example.net", 1_190_000_000.0),
                     ("nan.example.net", float("nan")), ("late.example.net", GOOD + 1)]:  # fmt: skip
        fl = https_flow(host=host)
        fl.request.timestamp_start = ts
        fl.request.timestamp_end = ts
        fl.response.timestamp_start = fl.response.timestamp_end = ts  # type: ignore[union-attr]
        flows.append(fl)
    d = tflow.tdnsflow(resp=True)
    d.request.questions = [mdns.Question("zero.example.net", 1, 1)]
    d.request.timestamp = d.timestamp_created = 0.0  # a zero request time falls back to the creation time
    d.response.timestamp = 0.0  # type: ignore[union-attr]
    flows.append(d)
    return write_flows(path, flows)


def odd_har(path: Path) -> Path:
    entries = [entry(), entry("https://epoch.example.org/"), entry("https://y1999.example.org/")]
    entries[1]["startedDateTime"] = "1970-01-01T00:00:00Z"
    entries[2]["startedDateTime"] = "1999-12-31T23:59:59Z"
    return write_har(path, entries)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("times")
    db = tmp / "case.sqlite"
    r = CliRunner().invoke(main, ["import", str(odd_flows(tmp / "odd.flows")), str(odd_har(tmp / "odd.har")),
                                  "--db", str(db), "--app", APP])  # fmt: skip
    assert r.exit_code == 1, r.output  # partly imported: the odd times are warnings
    return db


def test_odd_times_are_noted_in_the_inputs(case: Path) -> None:
    with Store(case) as s:
        notes = {i["kind"]: i["notes"] for i in s.inputs()}
    flows_note = next(n for n in notes["flows"] if "time outside" in n)
    # 0, 1e300, -5, 2007, the DNS lookup at 0 and the connection to its resolver
    assert flows_note.startswith("6 record(s) with a time outside 2008-01-01..now+1 day: kept")
    assert "without a usable start time were skipped" in " ".join(notes["flows"])  # NaN
    (har_note,) = notes["har"]
    assert har_note.startswith("2 record(s) with a time outside 2008-01-01..now+1 day: kept")
    assert "log.entries[1] 0.0" in har_note and "log.entries[2] 946684799.0" in har_note


def test_odd_times_are_left_out_of_the_timeline_and_first_last_seen(case: Path) -> None:
    with Store(case) as s:
        r = collect_report(s)
        times = [t for t, *_ in r.timeline]
        assert times and min(times) >= EARLIEST_TIME and max(times) == 1_718_703_000.25  # the good HAR entry
        dests = {d.host: d for d in r.destinations}
    for host in ("zero.example.net", "huge.example.net", "negative.example.net", "y2007.example.net",
                 "epoch.example.org", "y1999.example.org"):  # fmt: skip
        assert (dests[host].first_seen, dests[host].last_seen, dests[host].flows) == (None, None, 1), host
    assert dests["good.example.net"].first_seen == GOOD
    assert "nan.example.net" not in dests


@pytest.mark.parametrize(
    "args",
    [
        ["report", "-o", "{tmp}/r.html"], ["destinations", "--json"], ["destinations", "--csv"], ["destinations", "--table"],
        ["graph", "-o", "{tmp}/g.json"], ["graph", "-o", "{tmp}/g.graphml"], ["graph", "--receivers", "imei", "--json"],
        ["dns", "--json"], ["dns", "--csv"], ["dns", "--table"], ["pii", "--json"], ["check", "--deny-country", "US"],
        ["corpus", "--json"], ["diff", "{db}", "{db}", "--json"],
    ],
)  # fmt: skip
def test_every_reading_command_works(case: Path, tmp_path: Path, args: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)).replace("{db}", str(case)) for a in args]
    r = CliRunner().invoke(main, [*args] if args[0] == "diff" else [*args, "--db", str(case)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 3, 4), r.output
    if "--json" in args:
        strict_json(r.stdout)
    if args[0] == "dns":
        assert "zero.example.net" in r.stdout
    if args[:2] == ["dns", "--json"]:  # looked up at time 0: listed, without a first-seen time
        assert [n["first_seen"] for n in strict_json(r.stdout) if n["name"] == "zero.example.net"] == [None]
    if args[0] == "report":
        html = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert "1970" not in html.split('<section id="timeline">', 1)[1].split("</section>", 1)[0]
        assert "left out of timelines" in html
