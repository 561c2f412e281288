"""audit/output.py and audit.paths.write_atomic: the one output convention (issue 13)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit.errors import OutputError
from audit.output import (
    AuditGroup,
    ExitStatus,
    emit,
    fit_widths,
    format_options,
    render,
    render_table,
    safe_cell,
    text_width,
    truncate,
)
from audit.paths import write_atomic


@click.group(cls=AuditGroup)
def demo() -> None:
    """A group built like `audit`."""


@demo.command("show")
@format_options()
def show(fmt: str | None) -> None:
    rows = [{"a": "x" * 10, "b": 1}]
    emit(render(fmt or "json", data=rows, rows=rows, columns=("a", "b")))


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--json", "--csv"], "--json and --csv"),
        (["--format", "csv", "--table"], "--format csv and --table"),
        (["--table", "--format", "table"], "--format table and --table"),
    ],
)
def test_format_aliases_exclude_each_other_in_one_line(args: list[str], names: str) -> None:
    r = CliRunner().invoke(demo, ["show", *args])
    assert r.exit_code == ExitStatus.USAGE
    assert r.output.count("\n") == 1, r.output
    assert r.output.startswith(f"audit: error: {names} cannot be used together")


@pytest.mark.parametrize(
    ("args", "first"), [(["--json"], "["), (["--format", "json"], "["), (["--csv"], "a,b"), ([], "[")]
)
def test_format_and_its_aliases(args: list[str], first: str) -> None:
    r = CliRunner().invoke(demo, ["show", *args])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(first)


def test_click_parse_errors_get_the_prefix_too() -> None:
    r = CliRunner().invoke(demo, ["show", "--format", "xml"])
    assert (
        r.exit_code == ExitStatus.USAGE
        and r.output.startswith("audit: error: ")
        and r.output.count("\n") == 1
    )
    r = CliRunner().invoke(demo, ["nope"])
    assert r.exit_code == ExitStatus.USAGE and r.output.startswith("audit: error: No such command")


def test_exit_status_values() -> None:
    assert [(s.name, int(s)) for s in ExitStatus] == [
        ("OK", 0), ("ERROR", 1), ("USAGE", 2), ("POLICY", 3), ("INSUFFICIENT_EVIDENCE", 4),
    ]  # fmt: skip


def test_table_fits_the_width_and_cuts_with_an_ellipsis() -> None:
    rows = [
        {"host": "h" * 80, "country": "CN", "company": "Tencent Holdings Limited " * 3, "flows": 12},
        {"host": "short.example", "country": "US", "company": "Google", "flows": 3},
    ]
    text = render_table(rows, ("host", "country", "company", "flows"), width=60)
    lines = text.splitlines()
    assert max(text_width(line) for line in lines) <= 60
    assert "…" in lines[1] and lines[2].startswith("short.example")
    assert lines[0].split()[:4] == ["HOST", "COUNTRY", "COMPANY", "FLOWS"]
    # no limit: only the per-cell cap (60) cuts, with an ellipsis
    wide = render_table(rows, ("host", "company"), width=None).splitlines()
    assert wide[1].startswith("h" * 59 + "…")


def test_fit_widths_gives_way_widest_first_and_keeps_a_floor() -> None:
    assert fit_widths([10, 40, 5], 40) == [10, 21, 5]
    assert fit_widths([10, 40, 5], None) == [10, 40, 5]
    assert fit_widths([30, 30], 4) == [4, 4]  # never below the floor: the table overflows instead


def test_table_uses_columns_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    text = render_table([{"a": "x" * 50, "b": "y" * 50}], ("a", "b"))
    assert max(len(line) for line in text.splitlines()) <= 30


def test_wide_characters_and_hostile_strings() -> None:
    assert text_width("微信") == 4 and truncate("微信支付平台", 7) == "微信支…"
    assert truncate("abc", 3) == "abc" and truncate("abcd", 3) == "ab…"
    assert safe_cell("evil\x1b[31m\u202eexe.txt\u200b") == "evil\\x1b[31m\\u202eexe.txt\\u200b"
    assert safe_cell(["a", "b"]) == "a, b" and safe_cell(None) == ""
    text = render_table([{"v": "\x1b]0;pwned\x07<script>"}], ("v",), width=None)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;pwned\\x07<script>" in text


def test_render_csv_and_json() -> None:
    rows = [{"a": ["x", "y"], "b": None}]
    assert render("csv", data=rows, rows=rows, columns=("a", "b")) == "a,b\nx;y,\n"
    assert json.loads(render("json", data=rows)) == rows
    assert render("table", data=rows, rows=[], columns=("a",), empty="nothing") == "nothing"


# ---- write_atomic -------------------------------------------------------------------------------


def test_write_atomic_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "2024" / "app.html"
    write_atomic(target, "<html>")
    assert target.read_text(encoding="utf-8") == "<html>"
    assert os.listdir(target.parent) == ["app.html"]  # no temporary file left
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"


def test_write_atomic_keeps_the_mode_and_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    old = os.umask(0o027)
    try:
        write_atomic(target, "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    target.chmod(0o604)
    write_atomic(target, "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o604


def test_write_atomic_errors_name_the_file_or_folder_never_the_temporary_file(tmp_path: Path) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(OutputError) as e:
        write_atomic(blocker / "app.html", "x")
    assert str(e.value).startswith(f"{blocker / 'app.html'}: cannot create the folder {blocker}")
    assert ".tmp" not in str(e.value)
    with pytest.raises(OutputError, match="is a folder, not a file"):
        write_atomic(tmp_path, "x")


def test_write_atomic_failure_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    target = tmp_path / "app.html"
    target.write_text("old", encoding="utf-8")

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError) as e:
        write_atomic(target, "new")
    assert str(e.value) == f"{target}: cannot write (No space left on device)"
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["app.html"]


def test_write_atomic_writes_special_files_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_json_is_written_piece_by_piece_and_reads_as_json_dumps() -> None:
    """``dumps`` streams the encoder's pieces (a 100,000-endpoint scan joined a list of millions of
    them: hundreds of MB); the text is the one ``json.dumps`` gives."""
    import json

    from audit.output import dumps

    doc = {"a": [1, 2.5, None, True, {"é": "\u202e", "n": []}], "b": {}, "c": "x" * 10, "d": [[{}]]}
    assert dumps(doc) == json.dumps(doc, indent=2, ensure_ascii=False)
    assert dumps([]) == "[]" and dumps("s") == '"s"'
