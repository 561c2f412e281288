"""How every ``audit`` command shows its results and its errors (docs/cli.md, "Output").

One convention for every command that prints results: ``--format json|csv|table`` with the aliases
``--json``, ``--csv`` and ``--table`` (given together they are rejected in one line); a table on a
terminal and JSON when piped or written with ``-o``; tables that fit the terminal width and cut long
values with ``…``; control and bidi characters of hostile strings shown escaped; ``-o FILE`` written
atomically once the work succeeded (:func:`audit.paths.write_atomic`). One exit-status enum and one
error prefix (``audit: error:``) for every command.

This is the CLI layer: the library never imports it.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, TypeVar

import click

from audit.errors import AuditError, OptionError
from audit.paths import write_atomic

F = TypeVar("F", bound=Callable[..., Any])

#: Every error line starts with this (stderr), whatever the command.
ERROR_PREFIX = "audit: error: "

#: The output formats every result-printing command accepts.
FORMATS = ("json", "csv", "table")


class ExitStatus(enum.IntEnum):
    """Exit status of every command (the table in docs/cli.md)."""

    OK = 0
    ERROR = 1
    """An input could not be processed, or only partly (the others still were)."""
    USAGE = 2
    """Bad options or arguments: unknown option, conflicting options, a value that names nothing
    that exists (an app label, a data type, a country, a company)."""
    POLICY = 3
    """``audit check`` found violations of the given policy."""
    INSUFFICIENT_EVIDENCE = 4
    """``audit check`` found no violation but the case cannot show that there is none: it is empty,
    or a rule needs evidence the case does not hold (a data rule and no inspected traffic)."""


# ---- errors ----------------------------------------------------------------------------------


class CliError(click.ClickException):
    """A one-line error with the common prefix (exit status 1 unless told otherwise)."""

    def __init__(self, message: str, exit_code: int = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(ERROR_PREFIX + safe_cell(self.format_message()), file=file, err=file is None)


class CliUsageError(click.UsageError):
    """A usage error in one line, with where to find help: never click's three-line block."""

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        message = safe_cell(self.format_message()).rstrip(".")
        click.echo(ERROR_PREFIX + message + hint, file=file, err=file is None)


def prefixed(e: click.ClickException) -> click.ClickException:
    """``e`` as an error that shows with :data:`ERROR_PREFIX` (click's own included)."""
    if isinstance(e, CliError | CliUsageError | click.exceptions.NoArgsIsHelpError):
        return e
    if isinstance(e, click.UsageError):
        return CliUsageError(e.format_message(), e.ctx)
    return CliError(e.format_message(), e.exit_code)


class AuditGroup(click.Group):
    """The ``audit`` group: every error, click's parsing errors included, shows with one prefix."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as e:
            raise prefixed(e) from e

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            raise prefixed(e) from e


def error(message: str) -> None:
    """One error line on stderr (for errors the command goes on after)."""
    click.echo(ERROR_PREFIX + safe_cell(message), err=True)


def note(message: str) -> None:
    """A line on stderr about how the command read its input (``audit: '--country China' read as CN``)."""
    click.echo("audit: " + safe_cell(message), err=True)


def warning(message: str) -> None:
    click.echo("  warning: " + safe_cell(message), err=True)


def translate_errors(f: F) -> F:
    """Turn AuditError and OS errors into one line: an unknown name is a usage error (exit 2),
    everything else exit 1. Never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except OptionError as e:
            raise CliUsageError(str(e), click.get_current_context(silent=True)) from e
        except AuditError as e:
            raise CliError(str(e)) from e
        except OSError as e:
            raise CliError(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from e

    return wrapper  # type: ignore[return-value]


# ---- the output options ------------------------------------------------------------------------


def format_options(*extra: str, help: str = "") -> Callable[[F], F]:
    """``--format`` (:data:`FORMATS` and ``extra``) with its aliases ``--json``, ``--csv`` and
    ``--table``; the command receives one ``fmt`` argument (None when none was given). Two of them
    together are a usage error."""
    choices = (*FORMATS, *extra)

    def decorator(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = [(name, kwargs.pop(key)) for name, key in _FORMAT_KEYS]
            chosen = [(name, value if name == "--format" else name[2:]) for name, value in given if value]
            if len(chosen) > 1:
                names = [f"--format {v}" if n == "--format" else n for n, v in chosen]
                raise click.UsageError(
                    f"{' and '.join(names)} cannot be used together: give one output format"
                )
            return f(*args, fmt=chosen[0][1] if chosen else None, **kwargs)

        w: Any = wrapper
        w = click.option("--table", "_fmt_table", is_flag=True, help="Same as --format table.")(w)
        w = click.option("--csv", "_fmt_csv", is_flag=True, help="Same as --format csv.")(w)
        w = click.option("--json", "_fmt_json", is_flag=True, help="Same as --format json.")(w)
        w = click.option(
            "--format", "_fmt_format", type=click.Choice(choices), default=None,
            help=help or "Output format (default: table on a terminal, JSON when piped or written with -o).",
        )(w)  # fmt: skip
        return w  # type: ignore[no-any-return]

    return decorator


_FORMAT_KEYS = (
    ("--format", "_fmt_format"),
    ("--json", "_fmt_json"),
    ("--csv", "_fmt_csv"),
    ("--table", "_fmt_table"),
)


def resolve_format(fmt: str | None, output: str | None = None) -> str:
    """The format in effect: as given, else JSON into a file or a pipe, a table on a terminal."""
    if fmt:
        return fmt
    if output:
        return "json"
    return "table" if sys.stdout.isatty() else "json"


# ---- rendering -----------------------------------------------------------------------------------


def safe_cell(value: Any) -> str:
    """A value as terminal-safe text: control, format (bidi overrides, zero-width) and other
    non-printable characters are shown escaped (``\\x1b``, ``\\u202e``); lists are joined."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    s = str(value)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in s)


def _escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def text_width(s: str) -> int:
    """Columns ``s`` takes on a terminal: wide East Asian characters two, combining marks none."""
    if s.isascii():
        return len(s)
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s
    )


def truncate(s: str, width: int) -> str:
    """``s`` cut to ``width`` terminal columns, ending in ``…`` when cut."""
    if text_width(s) <= width:
        return s
    if width <= 0:
        return ""
    out, used = [], 0
    for ch in s:
        w = text_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(s: str, width: int) -> str:
    return s + " " * (width - text_width(s))


def terminal_width() -> int | None:
    """Columns available for a table: ``$COLUMNS``, else the terminal's width; None (no limit)
    when stdout is not a terminal."""
    env = os.environ.get("COLUMNS", "")
    if env.isdecimal() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None


#: No column is cut below this many columns to fit the terminal (fewer make values unreadable:
#: a table that cannot fit with every column this narrow overflows instead).
MIN_COLUMN = 4
GAP = "  "


def fit_widths(natural: Sequence[int], limit: int | None) -> list[int]:
    """Column widths that fit ``limit`` columns (with gaps between them): the widest columns give
    way first, none below :data:`MIN_COLUMN` (or its natural width)."""
    widths = list(natural)
    if limit is None:
        return widths
    room = limit - len(GAP) * (len(widths) - 1)
    floor = [min(w, MIN_COLUMN) for w in widths]
    while sum(widths) > room:
        i = max(range(len(widths)), key=lambda j: (widths[j] - floor[j], widths[j]))
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    return widths


def render_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], max_width: int = 60, width: int | None = -1
) -> str:
    """Rows as an aligned text table: no cell wider than ``max_width``, the whole table no wider
    than ``width`` columns (default: :func:`terminal_width`); cut values end in ``…``."""
    limit = terminal_width() if width == -1 else width
    cells = [[safe_cell(r.get(c)) for c in columns] for r in rows]
    heads = [c.upper() for c in columns]
    natural = [
        min(max_width, max([text_width(h)] + [text_width(row[i]) for row in cells]))
        for i, h in enumerate(heads)
    ]
    widths = fit_widths(natural, limit)

    def line(values: Sequence[str]) -> str:
        return GAP.join(_pad(truncate(v, w), w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(heads)] + [line(row) for row in cells])


def render_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header row; list cells joined with ``;``, dict cells as ``key=value`` joined with ``;``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(
            [
                ";".join(str(x) for x in v)
                if isinstance(v, list | tuple)
                else ";".join(f"{k}={x}" for k, x in v.items())
                if isinstance(v, dict)
                else ("" if v is None else v)
                for v in (r.get(c) for c in columns)
            ]
        )
    return buf.getvalue()


def record_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One record (a summary, an SDK) as ``key``/``value`` rows, for its CSV and table forms."""
    return [{"key": k, "value": v} for k, v in record.items() if not isinstance(v, dict)]


def dumps(obj: Any) -> str:
    # json.dumps with an indent joins a list of every piece (millions for a scan of 100,000
    # endpoints, about five times the text's size); pieces written one by one cost the text only.
    buf = io.StringIO()
    for piece in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(obj):
        buf.write(piece)
    return buf.getvalue()


def render(
    kind: str,
    *,
    data: Any,
    rows: Sequence[dict[str, Any]] = (),
    columns: Sequence[str] = (),
    table: Callable[[], str] | None = None,
    table_columns: Sequence[str] | None = None,
    empty: str = "",
) -> str:
    """A command's result in one format: ``data`` as JSON, ``rows`` as CSV (``columns``) and as a
    table (``table()`` when given, else ``rows`` under ``table_columns``; ``empty`` for no rows)."""
    if kind == "json":
        return dumps(data)
    if kind == "csv":
        return render_csv(rows, columns)
    if table is not None:
        return table()
    return render_table(rows, table_columns or columns) if rows else empty


def render_summary(kind: str, record: dict[str, Any], line: str) -> str:
    """A command's one-record summary: ``record`` as JSON or ``key,value`` CSV, ``line`` as the table."""
    return render(
        kind, data=record, rows=record_rows(record), columns=("key", "value"), table=lambda: safe_cell(line)
    )


def render_rows(
    rows: Sequence[dict[str, Any]],
    kind: str,
    csv_columns: Sequence[str],
    table_columns: Sequence[str],
    empty: str,
) -> str:
    """A list of row dicts: the list as JSON, the rows as CSV or a table."""
    return render(
        kind, data=list(rows), rows=rows, columns=csv_columns, table_columns=table_columns, empty=empty
    )


def emit(text: str, output: str | None = None) -> None:
    """Print ``text`` or write it to ``-o FILE`` (atomically; call only once the work succeeded)."""
    if output:
        write_output(output, text if text.endswith("\n") else text + "\n")
    elif text:
        click.echo(text, nl=not text.endswith("\n"))


def write_output(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write an ``-o`` file whole or not at all, creating missing parent folders."""
    write_atomic(path, data)
