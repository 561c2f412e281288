"""The ``audit`` command line: a thin click layer.

Each callback parses options, calls one library function, formats the result and maps
:class:`audit.errors.AuditError` to a one-line message. No business logic lives here.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from audit import __version__
from audit.errors import AuditError
from audit.store import default_db_path

F = TypeVar("F", bound=Callable[..., Any])


class ExitStatus(enum.IntEnum):
    """Documented exit codes (docs/cli.md)."""

    OK = 0
    ERROR = 1
    """An input could not be processed (other inputs may still have been)."""
    USAGE = 2
    """Bad options or arguments (click's own code)."""
    POLICY = 3
    """``audit check`` found violations of the given policy."""


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("audit")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    # androguard logs through loguru and is very chatty; silence it unless -vv.
    try:
        from loguru import logger as loguru_logger

        loguru_logger.remove()
        if verbose >= 2:
            loguru_logger.add(sys.stderr, level="DEBUG")
    except ImportError:  # pragma: no cover - androguard always brings loguru
        pass


def translate_errors(f: F) -> F:
    """Turn AuditError (and OS errors) into a one-line ClickException: never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except AuditError as e:
            raise click.ClickException(str(e)) from e
        except OSError as e:
            raise click.ClickException(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from e

    return wrapper  # type: ignore[return-value]


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False),
        default=default_db_path,
        show_default="$AUDIT_DB or ./audit.sqlite",
        help="Case file (SQLite) to read/write.",
    )(f)


def output_format_options(f: F) -> F:
    f = click.option("--table", "fmt", flag_value="table", help="Human-readable table (default on a terminal).")(f)
    f = click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")(f)
    f = click.option("--json", "fmt", flag_value="json", help="JSON (stable, documented in docs/).")(f)
    return f


def resolve_format(fmt: str | None, output: str | None = None) -> str:
    """Default: table on a terminal, JSON when piped or written to a file."""
    if fmt:
        return fmt
    if output:
        return "json"
    return "table" if sys.stdout.isatty() else "json"


def safe_cell(value: Any) -> str:
    """Render a value for a terminal table: hostile strings lose control characters."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    s = str(value)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in s)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], max_width: int = 60) -> str:
    cells = [[safe_cell(r.get(c))[:max_width] for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def render_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(
            [
                ";".join(str(x) for x in v) if isinstance(v, list | tuple) else ("" if v is None else v)
                for v in (r.get(c) for c in columns)
            ]
        )
    return buf.getvalue()


def emit(text: str, output: str | None) -> None:
    """Write to -o FILE (only after the work succeeded) or stdout."""
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        click.echo(text)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="audit")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for androguard too).")
def main(verbose: int) -> None:
    """Which servers does an Android app's data reach?

    \b
    Static scan of APKs, live capture (mitmproxy addon) and traffic import,
    joined in one graph and a self-contained HTML report.

    \b
    Example:
      audit scan apks/app.apk --db case.sqlite
      audit import capture.har --db case.sqlite --app com.example.app
      audit report --db case.sqlite -o reports/app.html
    """
    _configure_logging(verbose)


# ---- commands are registered below, one block per command (see docs/cli.md) ----------------


# ---- audit destinations ---------------------------------------------------------------------


@main.command("destinations")
@db_option
@click.option("--app", "app", default=None, help="Only this app label (default: every app in the case).")
@output_format_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE instead of stdout.")
@click.option(
    "--mmdb",
    "mmdb",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="MaxMind/DB-IP .mmdb file (City, Country or ASN); repeatable. Default: the files given to the "
    "recorder for this case, else the embedded database.",
)
@translate_errors
def destinations_cmd(db: str, app: str | None, fmt: str | None, output: str | None, mmdb: tuple[str, ...]) -> None:
    """List every server the app reached: one row per (host, IP, port).

    Keeps three facts apart: server location (geo-IP of the IP contacted), network owner (ASN) and
    the company owning the domain with its home country. Columns: docs/destinations.md.

    \b
    Example:
      audit destinations --db case.sqlite --app com.example.app --table
      audit destinations --db case.sqlite --mmdb GeoLite2-City.mmdb --mmdb GeoLite2-ASN.mmdb --csv -o dest.csv
    """
    from audit.destinations import CSV_COLUMNS, TABLE_COLUMNS, enricher_for, list_destinations
    from audit.store import Store

    if db != ":memory:" and not Path(db).is_file():
        raise click.ClickException(f"{db}: no such case file; record traffic or run `audit import` first")
    with Store(db) as store:
        rows = [d.to_dict() for d in list_destinations(store, app=app, enricher=enricher_for(store, mmdb))]
    kind = resolve_format(fmt, output)
    if kind == "json":
        text = dumps(rows)
    elif kind == "csv":
        text = render_csv(rows, CSV_COLUMNS)
    else:
        text = render_table(rows, TABLE_COLUMNS) if rows else "no destinations recorded"
    emit(text, output)


# ---- audit import ---------------------------------------------------------------------------


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--app", "app", default="", help="App label for every imported row (default: PCAPdroid's app name, else none).")
@click.option(
    "--device",
    "device",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Device profile (TOML/JSON, docs/device-profile.md): look for the device's own identifiers in requests.",
)
@translate_errors
def import_cmd(files: tuple[str, ...], db: str, app: str, device: str | None) -> None:
    """Import saved traffic: mitmproxy flow files, HAR, pcap/pcapng.

    The format is recognised by content, not by file name. Each file is imported whole or not at
    all; a truncated flow file or capture keeps what was readable and says so. A file that cannot be
    read is reported in one line and the others are still imported (exit status 1). Details:
    docs/import.md.

    \b
    Example:
      audit import session.flows capture.pcapng --db case.sqlite --app com.example.app
      audit import export.har --db case.sqlite --device device.toml
    """
    from audit.store import Store
    from audit.traffic.importers import import_file
    from audit.traffic.pii import PiiDetector
    from audit.traffic.profile import load_profile

    detector = PiiDetector(load_profile(device) if device else None)
    failed = 0
    with Store(db) as store:
        if device:
            store.record_input("device-profile", device, None, app)
        for name in files:
            try:
                s = import_file(Path(name), store, app=app, detector=detector)
            except AuditError as e:
                failed += 1
                click.echo(f"Error: {e}", err=True)
                continue
            click.echo(f"{safe_cell(s.path)}: {s.format}, {s.connections} connections, {s.dns} DNS records")
            for problem in s.errors:
                click.echo(f"  warning: {safe_cell(problem)}", err=True)
    if failed:
        click.get_current_context().exit(ExitStatus.ERROR)
