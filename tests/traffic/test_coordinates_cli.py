"""`coordinates` end to end (issue 12 point 10): imported with a device profile, listed by the
policy check, and a documented data type for `--deny-data`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from audit.cli import main
from audit.output import ExitStatus
from tests.conftest import FIXTURES
from tests.helpers.traffic import entry, write_har


def test_venue_coordinates_are_coordinates_and_can_be_denied(tmp_path: Path) -> None:
    har = write_har(tmp_path / "maps.har", [
        entry("https://maps.example.com/v1/search?latitude=48.858370&longitude=2.294481&q=museum"),  # Paris
        entry("https://maps.example.com/v1/nearby?lat=52.52010&lng=13.40501"),  # the device (Berlin)
    ])  # fmt: skip
    db = str(tmp_path / "case.sqlite")
    run = CliRunner().invoke
    r = run(
        main,
        [
            "import",
            str(har),
            "--db",
            db,
            "--app",
            "com.maps",
            "--device",
            str(FIXTURES / "captures" / "device.toml"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = run(main, ["check", "--db", db, "--deny-data", "coordinates", "--json"])  # found at import
    assert r.exit_code == ExitStatus.POLICY, r.output
    device = str(FIXTURES / "captures" / "device.toml")
    r = run(main, ["pii", "--db", db, "--device", device, "--json"])
    assert r.exit_code == 0, r.output
    found = {(f["data_type"], loc) for f in json.loads(r.stdout)["summary"] for loc in f["locations"]}
    assert ("coordinates", "query:latitude") in found and ("location", "query:lat") in found
    assert ("location", "query:latitude") not in found
    r = run(main, ["check", "--db", db, "--deny-data", "coordinates", "--json"])
    assert r.exit_code == ExitStatus.POLICY, r.output
    r = run(main, ["check", "--db", db, "--deny-data", "coordinate"])
    assert r.exit_code == ExitStatus.USAGE and "did you mean" in r.stderr and "coordinates" in r.stderr


def test_report_lists_coordinates_as_findings_not_as_personal_data(tmp_path: Path) -> None:
    har = write_har(
        tmp_path / "maps.har", [entry("https://maps.example.com/v1/search?ll=48.858370,2.294481&q=museum")]
    )
    db = str(tmp_path / "case.sqlite")
    run = CliRunner().invoke
    assert (
        run(
            main, ["import", str(har), "--db", db, "--device", str(FIXTURES / "captures" / "device.toml")]
        ).exit_code
        == 0
    )
    r = run(main, ["report", "--db", db, "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    verdict = html.split('<section id="verdict">', 1)[1].split("</section>", 1)[0]
    assert "Personal data seen in traffic" not in verdict and "coordinates" not in verdict
    findings = html.split('<section id="findings">', 1)[1].split("</section>", 1)[0]
    assert ">coordinates<" in findings and "query:ll" in findings
