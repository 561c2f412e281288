"""Every command is documented: help text with an example, and a section in docs/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit import __version__
from audit.cli import ExitStatus, main

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


COMMANDS = list(_commands(main))


def test_the_expected_commands_exist() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    expected = {"scan", "import", "destinations", "pii", "graph", "report", "run", "check", "diff",
                "signatures", "signatures import", "signatures list", "signatures show",
                "geoip", "geoip import", "geoip info", "geoip lookup"}  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p))
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    r = CliRunner().invoke(main, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example" in r.output, f"audit {' '.join(path)} --help has no example"
    assert f"audit {' '.join(path)}" in r.output


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p))
def test_documented_in_docs(path: tuple[str, ...]) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    assert f"audit {' '.join(path)}" in text


def test_version_and_short_help() -> None:
    r = CliRunner().invoke(main, ["-V"])
    assert r.exit_code == 0 and __version__ in r.output
    assert CliRunner().invoke(main, ["-h"]).exit_code == 0


def test_exit_codes_are_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        assert f"| {int(status)} | `{status.name}`" in text


def test_unknown_option_is_a_usage_error() -> None:
    r = CliRunner().invoke(main, ["scan", "--no-such-option"])
    assert r.exit_code == ExitStatus.USAGE


def test_python_dash_m_audit() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert __version__ in r.stdout
