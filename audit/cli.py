"""The ``audit`` command line: a thin click layer.

Each callback parses options, calls one library function, formats the result and maps
:class:`audit.errors.AuditError` to a one-line message. No business logic lives here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from audit import __version__
from audit.errors import AuditError
from audit.output import (
    AuditGroup,
    CliError,
    ExitStatus,
    emit,
    error,
    format_options,
    note,
    record_rows,
    render,
    render_rows,
    render_summary,
    render_table,
    resolve_format,
    safe_cell,
    translate_errors,
    write_output,
)
from audit.store import default_db_path

if TYPE_CHECKING:  # imported where the command runs: `audit --help` stays fast
    from audit.traffic.importers import ImportSummary

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["ExitStatus", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("audit")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    # androguard logs through loguru and is very chatty; silence it unless -vv. No command imports
    # androguard (the scanner has its own readers), so loguru is configured only if something
    # already loaded it: importing it costs ~60 ms of every command's start-up.
    if "loguru" in sys.modules:
        from loguru import logger as loguru_logger

        loguru_logger.remove()
        if verbose >= 2:
            loguru_logger.add(sys.stderr, level="DEBUG")


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False),
        default=default_db_path,
        show_default="$AUDIT_DB or ./audit.sqlite",
        help="Case file (SQLite) to read/write.",
    )(f)


def _mmdb_option(f: F) -> F:
    return click.option(
        "--mmdb",
        "mmdb",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="MaxMind/DB-IP .mmdb file (City, Country or ASN); repeatable. Default: the files given to the "
        "recorder for this case, else the embedded database.",
    )(f)


def _app_option(f: F) -> F:
    return click.option(
        "--app",
        "app",
        default=None,
        help="Only this app label (default: every app in the case; an unknown label is an error).",
    )(f)


def _output_option(
    what: str = "Write the output to FILE instead of stdout (missing folders are created).",
) -> Callable[[F], F]:
    return click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None, help=what)


@click.group("audit", cls=AuditGroup, context_settings=CONTEXT_SETTINGS)
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
@_app_option
@format_options()
@_output_option()
@_mmdb_option
@click.option(
    "--all", "show_all", is_flag=True, help="Also list local-network noise (broadcast, multicast, mDNS …)."
)
@translate_errors
def destinations_cmd(
    db: str, app: str | None, fmt: str | None, output: str | None, mmdb: tuple[str, ...], show_all: bool
) -> None:
    """List every server the app reached: one row per (host, IP, port).

    Keeps three facts apart: server location (geo-IP of the IP contacted), network owner (ASN) and
    the company owning the domain with its home country. Local-network noise (broadcast, multicast,
    mDNS, SSDP, DHCP …) is left out unless --all; well-known OS traffic is marked (background: os).
    Columns: docs/destinations.md.

    \b
    Example:
      audit destinations --db case.sqlite --app com.example.app --table
      audit destinations --db case.sqlite --all --json
      audit destinations --db case.sqlite --mmdb GeoLite2-City.mmdb --mmdb GeoLite2-ASN.mmdb --csv -o dest.csv
    """
    from audit.destinations import CSV_COLUMNS, TABLE_COLUMNS, enricher_for, list_destinations

    with _case(db, app) as store:
        found = list_destinations(store, app=app, enricher=enricher_for(store, mmdb), local=show_all)
        rows = [d.to_dict() for d in found]
    emit(
        render_rows(
            rows, resolve_format(fmt, output), CSV_COLUMNS, TABLE_COLUMNS, "no destinations recorded"
        ),
        output,
    )


# ---- audit dns ------------------------------------------------------------------------------


@main.command("dns")
@db_option
@_app_option
@format_options()
@_output_option()
@translate_errors
def dns_cmd(db: str, app: str | None, fmt: str | None, output: str | None) -> None:
    """List every name looked up in DNS: its answers, first seen, and whether it was contacted.

    A name is contacted when a connection went to one of its answers or to the name itself (host or
    SNI); one looked up and not contacted still shows intent, and was told to the resolver.
    Columns: docs/dns.md.

    \b
    Example:
      audit dns --db case.sqlite --app com.example.app --table
      audit dns --db case.sqlite --json | jq '.[] | select(.contacted | not) | .name'
    """
    from audit.dnsview import CSV_COLUMNS, TABLE_COLUMNS, dns_names

    with _case(db, app) as store:
        rows = [n.to_dict() for n in dns_names(store, app)]
    emit(
        render_rows(rows, resolve_format(fmt, output), CSV_COLUMNS, TABLE_COLUMNS, "no DNS lookups recorded"),
        output,
    )


def _case(db: str, app: str | None = None) -> Any:
    """The case file ``db``, which must exist, opened (read-only when it cannot be written) and
    checked; ``app`` must be one of its labels."""
    from audit.store import Store

    if db != ":memory:" and not Path(db).is_file():
        raise click.ClickException(
            f"{db}: no such case file; run `audit scan --db`, `audit import` or `audit run` first"
        )
    store = Store(db)
    try:
        store.verify()  # a damaged case gives one line here, not a traceback in a formatter
        store.require_app(app)
    except BaseException:
        store.close()
        raise
    return store


# ---- audit import ---------------------------------------------------------------------------


_vantage_option = click.option(
    "--vantage", "vantage", default=None, metavar="CC",
    help="Country the device was in during the capture (ISO 3166-1 code, or an unambiguous name): shown next to every "
    "server country, compared by `audit diff`.",
)  # fmt: skip


def _vantage_code(value: str | None) -> str | None:
    """The ISO code of a ``--vantage`` value (a one-line usage error otherwise), noting how a name was read."""
    if value is None:
        return None
    from audit.enrich.country import country_code

    code, how = country_code(value, "--vantage")
    if how:
        note(how)
    return code


_keylog_option = click.option(
    "--keylog", "keylog", type=click.Path(exists=True, dir_okay=False), default=None,
    help="NSS key log (SSLKEYLOGFILE) for the TLS of pcap/pcapng captures; decrypted with tshark (docs/import.md).",
)  # fmt: skip


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--app", "app", default="",
              help="App label for the rows the capture ties to no app (PCAPdroid's per-app rows keep their app).")  # fmt: skip
@click.option(
    "--device",
    "device",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Device profile (TOML/JSON, docs/device-profile.md): look for the device's own identifiers in requests.",
)
@_vantage_option
@_keylog_option
@click.option("--replace", "replace", is_flag=True,
              help="Re-import a file already imported under this app label, replacing its earlier rows "
              "(default: such a file is skipped).")  # fmt: skip
@translate_errors
def import_cmd(
    files: tuple[str, ...], db: str, app: str, device: str | None, vantage: str | None, keylog: str | None,
    replace: bool,
) -> None:  # fmt: skip
    """Import saved traffic: mitmproxy flow files, HAR, pcap/pcapng.

    The format is recognised by content, not by file name. Each file is imported whole or not at
    all; a truncated flow file or capture keeps what was readable and says so. A file that cannot be
    read, and each problem of a file read only partly, is one `audit: error:` line; the other files
    are still imported, and the exit status is 1. A file already imported under the same app label
    (same SHA-256) is skipped, or re-imported with --replace. Details: docs/import.md.

    \b
    Example:
      audit import session.flows capture.pcapng --db case.sqlite --app com.example.app
      audit import export.har --db case.sqlite --device device.toml
      audit import us-phone.pcapng --db case-us.sqlite --vantage US
      audit import phone.pcapng --keylog sslkeys.log --db case.sqlite
    """
    from audit.store import Store
    from audit.traffic.importers import import_file
    from audit.traffic.pii import PiiDetector
    from audit.traffic.profile import load_profile

    vantage = _vantage_code(vantage)
    if vantage:  # imported only then: geo-IP and AS tables are a tenth of an import's start-up
        from audit.destinations import record_vantage
    detector = PiiDetector(load_profile(device) if device else None)
    failed = 0
    with Store(db) as store:
        if device:
            store.record_input("device-profile", device, None, app)
        for name in files:
            try:
                s = import_file(Path(name), store, app=app, detector=detector,
                                keylog=Path(keylog) if keylog else None, replace=replace)  # fmt: skip
            except AuditError as e:
                failed += 1
                error(str(e))
                continue
            if vantage:  # a fact about the capture: also for one imported before
                record_vantage(store, vantage, app=app, sha256=s.sha256, capture=s.path)
            if s.skipped:
                click.echo(
                    f"{safe_cell(s.path)}: already imported{_label(app)}: skipped (--replace re-imports it)"
                )
                continue
            click.echo(_import_line(s))
            failed += _problems(s.path, s.errors)
    if failed:
        click.get_current_context().exit(ExitStatus.ERROR)


def _import_line(s: ImportSummary) -> str:
    """The one summary line of an imported file (``ImportSummary``): counts, the apps a PCAPdroid
    capture names, what TLS decryption read."""
    line = f"{safe_cell(s.path)}: {s.format}, {s.connections} connections, {s.dns} DNS records"
    if s.apps:
        line += f", {len(s.apps)} apps ({safe_cell(', '.join(a.package for a in s.apps))})"
    d = s.decryption
    if d is not None:
        line += (f", TLS decrypted: {d.decrypted} of {d.tls_connections} connections ({d.requests} requests); "
                 f"{d.undecrypted} not inspected ({d.without_keys} without keys)")  # fmt: skip
    if s.replaced:
        line += " (replaced its earlier import)"
    return line


def _label(app: str) -> str:
    return f" for {safe_cell(app)}" if app else " (no app label)"


def _problems(path: str, problems: Sequence[str]) -> int:
    """Print an input's problems (a partly read file) as `audit: error:` lines; 1 if there were any
    (docs/cli.md: an input processed only partly exits 1)."""
    for problem in problems:
        click.echo(f"audit: error: {safe_cell(path)}: {safe_cell(problem)}", err=True)
    return 1 if problems else 0


# ---- audit graph / report / run / check / diff -----------------------------------------------


#: ``audit graph --receivers TYPE`` columns.
RECEIVER_COLUMNS = (
    "host",
    "flows",
    "server_countries",
    "networks",
    "companies",
    "company_countries",
    "locations",
)


@main.command("graph")
@db_option
@_app_option
@_output_option("Write the graph to FILE (missing folders are created).")
@format_options(
    "graphml", "dot",
    help="With -o: graphml, json or dot (default: from the extension: .graphml, .json, .dot). With --receivers "
    "or --paths-to: json, csv or table (default: table on a terminal, JSON when piped).",
)  # fmt: skip
@click.option(
    "--receivers",
    "receivers",
    metavar="TYPE",
    help="Print the hosts receiving a data type (imei, android_id …).",
)
@click.option(
    "--paths-to",
    "target",
    metavar="NODE",
    help="Print every path from the app to a node: country:CN, company:Tencent, jurisdiction:CN.",
)
@_mmdb_option
@translate_errors
def graph_cmd(
    db: str, app: str | None, output: str | None, fmt: str | None, receivers: str | None, target: str | None,
    mmdb: tuple[str, ...],
) -> None:  # fmt: skip
    """Build the data-flow graph (app → SDK → host → IP → country / network / company) and export or query it.

    Node ids, layers and edge attributes: docs/graph.md.

    \b
    Example:
      audit graph --db case.sqlite -o case.graphml
      audit graph --db case.sqlite -o case.dot
      audit graph --db case.sqlite --receivers imei --table
      audit graph --db case.sqlite --paths-to company:Tencent --json
    """
    from audit.destinations import enricher_for
    from audit.graph import (
        build_graph,
        graph_format,
        layer_counts,
        paths_to,
        receivers_of,
        render_graph,
        target_node,
    )
    from audit.policy import data_type

    if sum(x is not None for x in (output, receivers, target)) != 1:
        raise click.UsageError("give exactly one of -o FILE, --receivers TYPE or --paths-to NODE")
    if output and fmt in ("csv", "table"):
        raise click.UsageError(f"-o FILE writes the graph as graphml, json or dot, not {fmt}")
    if not output and fmt in ("graphml", "dot"):
        raise click.UsageError(f"--format {fmt} applies to -o FILE only")
    if receivers is not None:
        receivers = data_type(receivers, "--receivers")
    if target is not None:
        target, note = target_node(target)
        if note:
            click.echo(f"audit: {note}", err=True)
    with _case(db, app) as store:
        G = build_graph(store, app, enricher=enricher_for(store, mmdb))
    if output:
        kind = graph_format(output, fmt)
        write_output(output, render_graph(G, kind))
        layers = ", ".join(f"{n} {k}" for k, n in layer_counts(G).items())
        click.echo(
            f"{safe_cell(output)}: {kind}, {G.number_of_nodes()} nodes ({layers}), {G.number_of_edges()} edges"
        )
        return
    kind = resolve_format(fmt)
    if receivers is not None:
        rows = [r.to_dict() for r in receivers_of(G, receivers)]
        emit(render_rows(rows, kind, RECEIVER_COLUMNS, RECEIVER_COLUMNS, f"no host received {receivers}"))
    elif target is not None:
        paths = paths_to(G, target)
        emit(render(
            kind, data=paths, rows=[{"length": len(p) - 1, "path": p} for p in paths], columns=("length", "path"),
            table=lambda: "\n".join(" → ".join(safe_cell(n) for n in p) for p in paths)
            or f"no path from the app to {safe_cell(target)}",
        ))  # fmt: skip


@main.command("report")
@db_option
@_app_option
@_mmdb_option
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (missing folders are created).")  # fmt: skip
@translate_errors
def report_cmd(db: str, app: str | None, mmdb: tuple[str, ...], output: str) -> None:
    """Write the self-contained HTML report of a case (no external requests; prints well).

    Verdict, shares per server country and per company home country, personal data and who
    receives it, the data-flow graph, timeline, destinations, SDKs, endpoints, findings and the
    methodology. Sections: docs/report.md.

    \b
    Example:
      audit report --db case.sqlite -o reports/app.html
      audit report --db case.sqlite --app com.example.app --mmdb GeoLite2-City.mmdb -o reports/app.html
    """
    from audit.destinations import enricher_for
    from audit.report.html import write_report

    with _case(db, app) as store:
        r = write_report(store, output, app, enricher=enricher_for(store, mmdb))
    click.echo(
        f"{safe_cell(output)}: {len(r.destinations)} destinations, {r.total_flows} flows, "
        f"{len(r.known_countries)} server countries, {len(r.known_companies)} companies"
    )


@main.command("run")
@click.argument("apk", type=click.Path(exists=True, dir_okay=False))
@click.option("--capture", "captures", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Traffic file to import (flows, HAR, pcap); repeatable.")  # fmt: skip
@click.option("--device", "device", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Device profile (TOML/JSON) for personal-data detection.")  # fmt: skip
@db_option
@_mmdb_option
@click.option("--app", "app", default=None, help="App label (default: the package name).")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="HTML report to write (missing folders are created).")  # fmt: skip
@_vantage_option
@_keylog_option
@translate_errors
def run_cmd(
    apk: str, captures: tuple[str, ...], device: str | None, db: str, mmdb: tuple[str, ...], app: str | None,
    output: str, vantage: str | None, keylog: str | None,
) -> None:  # fmt: skip
    """Scan an APK, import its captures and write the report, in one command.

    Re-running on the same case file neither re-scans the same APK nor re-imports the same capture.

    \b
    Example:
      audit run app.apk --capture session.har --device device.toml --db case.sqlite -o reports/app.html
    """
    from audit.pipeline import run

    s = run(apk, output=output, captures=captures, device=device, db=db, mmdb=mmdb, app=app,
            vantage=_vantage_code(vantage), keylog=keylog)  # fmt: skip
    click.echo(f"{safe_cell(s.app)}: {'scanned' if s.scanned else 'already scanned'}, "
               f"{len(s.scan.servers)} endpoints, {len(s.scan.sdks)} SDKs")  # fmt: skip
    partial = 0
    for i in s.imports:
        click.echo(_import_line(i))
        partial += _problems(i.path, i.errors)
    for path in s.skipped:
        click.echo(f"{safe_cell(path)}: already imported")
    click.echo(f"{safe_cell(s.output)}: {s.destinations} destinations, {s.flows} flows")
    if partial:
        click.get_current_context().exit(ExitStatus.ERROR)


#: ``audit check --format csv`` columns, one row per violation (docs/report.md).
CHECK_CSV_COLUMNS = (
    "rule", "value", "fact", "evidence", "static_evidence", "host", "ip", "port", "flows", "server_country",
    "company", "company_country", "sdk", "asn", "asn_org", "data_types", "network_flags", "files", "message",
)  # fmt: skip


@main.command("check")
@db_option
@_app_option
@click.option("--deny-country", "deny_countries", multiple=True, metavar="CC",
              help="Deny a country (ISO 3166-1 code, or an unambiguous name): as server location AND as company home "
              "country; repeatable.")  # fmt: skip
@click.option("--deny-company", "deny_companies", multiple=True, metavar="NAME",
              help="Deny a company of the company database (and its subsidiaries' hosts); repeatable.")  # fmt: skip
@click.option("--deny-data", "deny_data", multiple=True, metavar="TYPE",
              help="Deny sending a data type (imei, android_id … docs/pii.md); repeatable.")  # fmt: skip
@click.option("--deny-asn", "deny_asns", multiple=True, metavar="ASN",
              help="Deny servers on a network (AS number, 45090 or AS45090); repeatable.")  # fmt: skip
@click.option("--deny-network-flag", "deny_flags", multiple=True, metavar="FLAG",
              type=click.Choice(["anycast", "anonymous-proxy", "satellite-provider", "drop"], case_sensitive=False),
              help="Deny servers on networks the IPFire location database flags (drop: hostile); repeatable.")  # fmt: skip
@format_options()
@_mmdb_option
@translate_errors
def check_cmd(
    db: str, app: str | None, deny_countries: tuple[str, ...], deny_companies: tuple[str, ...],
    deny_data: tuple[str, ...], deny_asns: tuple[str, ...], deny_flags: tuple[str, ...], fmt: str | None,
    mmdb: tuple[str, ...],
) -> None:  # fmt: skip
    """Check a case against a deny-list policy, for CI pipelines.

    Every value is validated first (a misspelt country, company, data type or app label is a usage
    error, exit 2). Prints each violation with its evidence (host, IP, country/company/data type,
    flows) and exits 3 when there is any; 4 when there is none but the case cannot show it (an
    empty case, a data rule without inspected traffic), with the reason; 0 otherwise. A denied
    country matches the server location and the company home country; each violation says which.

    \b
    Example:
      audit check --db case.sqlite --deny-country CN --deny-company Tencent --deny-data imei
      audit check --db case.sqlite --deny-asn AS4134 --deny-network-flag drop --json
    """
    from audit.destinations import enricher_for
    from audit.policy import evaluate, make_policy

    policy = make_policy(deny_countries, deny_companies, deny_data, deny_asns, deny_flags)
    if policy.empty:
        raise click.UsageError(
            "give at least one --deny-country, --deny-company, --deny-data, --deny-asn or --deny-network-flag"
        )
    for n in policy.notes:
        note(n)
    with _case(db) as store:
        result = evaluate(store, policy, app, enricher=enricher_for(store, mmdb))
    kind = resolve_format(fmt)
    rows = [v.to_dict() for v in result.violations]

    def table() -> str:
        if result.violations:
            return "\n".join(safe_cell(v.message) for v in result.violations)
        return "not enough evidence to judge this policy" if result.insufficient else "no violations"

    emit(render(kind, data=result.to_dict(), rows=rows, columns=CHECK_CSV_COLUMNS, table=table))
    for reason in result.insufficient:
        note(f"not enough evidence: {reason}")
    if result.violations:
        if kind == "table":
            count = len(result.violations)
            click.echo(f"{count} violation{'s' if count != 1 else ''}", err=True)
        click.get_current_context().exit(ExitStatus.POLICY)
    if result.insufficient:
        click.get_current_context().exit(ExitStatus.INSUFFICIENT_EVIDENCE)


@main.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@format_options()
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit with status 1 when anything changed, 0 when nothing did (like `git diff --exit-code`).")  # fmt: skip
@translate_errors
def diff_cmd(old: str, new: str, fmt: str | None, exit_code: bool) -> None:
    """What changed in this update: versions, companies, countries, data, SDKs, hosts, permissions.

    OLD and NEW are APKs (static facts) or case files (.sqlite: static + observed traffic).
    Permissions are also compared as the data they reach ("+ location (fine)", "+ SMS").

    \b
    Example:
      audit diff app-1.0.apk app-1.1.apk
      audit diff case-1.0.sqlite case-1.1.sqlite --json
      audit diff old.apk new.apk --exit-code --table
    """
    from audit.diff import change_rows, diff_paths, render_text

    result = diff_paths(old, new)
    emit(render(
        resolve_format(fmt), data=result.to_dict(), rows=change_rows(result), columns=("category", "change", "value"),
        table=lambda: "\n".join(safe_cell(line) for line in render_text(result).splitlines()),
    ))  # fmt: skip
    if exit_code and result.changed:
        click.get_current_context().exit(ExitStatus.ERROR)


# ---- audit signatures ------------------------------------------------------------------------

SIGNATURE_COLUMNS = ("id", "name", "owner", "owner_country", "category", "code_prefixes", "domains", "source")
SIGNATURE_TABLE_COLUMNS = ("id", "name", "owner", "owner_country", "category", "source")


def _overlay_option(f: F) -> F:
    return click.option(
        "--overlay",
        "overlay",
        type=click.Path(dir_okay=False),
        default=None,
        help="Signature overlay file (default: $AUDIT_HOME/signatures-overlay.json, else "
        "~/.local/share/dataflow-audit/signatures-overlay.json).",
    )(f)


@main.group("signatures")
def signatures_group() -> None:
    """The SDK signature database: builtin entries plus your overlay (docs/signatures.md).

    \b
    Example:
      audit signatures list --country CN --category push
      audit signatures show tencent_bugly
      audit signatures import exodus_trackers.json
    """


@signatures_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_overlay_option
@format_options(help="Summary format (default: one line on a terminal, JSON when piped).")
@translate_errors
def signatures_import_cmd(file: str, overlay: str | None, fmt: str | None) -> None:
    """Import an Exodus Privacy tracker file (public API JSON) into the overlay.

    Trackers whose code prefixes duplicate a builtin SDK are merged into it as extra evidence;
    regex patterns that cannot be turned into a prefix or domain safely are skipped and counted.
    You supply the file (the Exodus database is ODbL); nothing is downloaded.

    \b
    Example:
      audit signatures import trackers.json --overlay ./overlay.json
    """
    from audit.static.signatures import import_exodus

    summary = import_exodus(Path(file), Path(overlay) if overlay else None)
    emit(render_summary(resolve_format(fmt), summary.to_dict(), summary.describe()))


@signatures_group.command("list")
@format_options()
@click.option(
    "--category", "category", default=None, help="Only this category (analytics, advertising, push …)."
)
@click.option("--country", "country", default=None, metavar="CC",
              help="Only SDKs whose owner is based in CC (ISO 3166-1 code, or an unambiguous name).")  # fmt: skip
@_overlay_option
@translate_errors
def signatures_list_cmd(
    fmt: str | None, category: str | None, country: str | None, overlay: str | None
) -> None:
    """List known SDKs: id, owner and its country, category, code prefixes, domains.

    \b
    Example:
      audit signatures list --country CN --table
      audit signatures list --category advertising --csv > ads.csv
    """
    from audit.enrich.country import country_code
    from audit.static.signatures import CATEGORIES, load_signatures

    if category and category.casefold() not in CATEGORIES:
        raise click.BadParameter(
            f"unknown category (choose from: {', '.join(CATEGORIES)})", param_hint="--category"
        )
    if country:
        country, how = country_code(country, "--country")
        if how:
            note(how)
    db = load_signatures(Path(overlay) if overlay else None)
    rows = [s.to_dict() for s in db.filter(category=category, country=country)]
    emit(
        render_rows(rows, resolve_format(fmt), SIGNATURE_COLUMNS, SIGNATURE_TABLE_COLUMNS, "no matching SDKs")
    )


@signatures_group.command("show")
@click.argument("sdk_id")
@format_options()
@_overlay_option
@translate_errors
def signatures_show_cmd(sdk_id: str, fmt: str | None, overlay: str | None) -> None:
    """Show one SDK: owner, country, category, every code prefix and domain, notes.

    \b
    Example:
      audit signatures show pangle
      audit signatures show tencent_bugly --json
    """
    from audit.static.signatures import load_signatures

    db = load_signatures(Path(overlay) if overlay else None)
    sdk = db.get(sdk_id)
    if sdk is None:
        raise CliError(f"{sdk_id}: no such SDK{_did_you_mean(sdk_id, [s.id for s in db.filter()])}; see `audit signatures list`",
                       ExitStatus.USAGE)  # fmt: skip
    d = sdk.to_dict()

    def table() -> str:
        lines = [f"{key + ':':15} {safe_cell(d[key])}" for key in
                 ("id", "name", "owner", "owner_country", "category", "source", "website", "notes") if d.get(key)]  # fmt: skip
        for key in ("code_prefixes", "domains", "merged_from"):
            lines += [f"{(key + ':') if i == 0 else '':15} {safe_cell(v)}" for i, v in enumerate(d[key])]
        return "\n".join(lines)

    emit(render(resolve_format(fmt), data=d, rows=record_rows(d), columns=("key", "value"), table=table))


def _did_you_mean(value: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value, known, n=3, cutoff=0.8)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


# ---- audit geoip -----------------------------------------------------------------------------

GEOIP_COLUMNS = (
    "ip", "scope", "server_country", "server_city", "asn", "asn_org", "geo_database", "geo_database_date",
    "network_flags", "asn_source", "asn_org_source", "via_nat64", "nat64_ipv4",
)  # fmt: skip
GEOIP_TABLE_COLUMNS = ("ip", "scope", "server_country", "server_city", "asn", "asn_org")


@main.group("geoip")
def geoip_group() -> None:
    """Geo-IP and network-owner databases: what is in use, lookups, and importing an ASN table.

    \b
    The embedded database gives country and AS organisation; AS numbers come from an
    ASN .mmdb (--mmdb), from range files you import once, or from the IPFire location
    database (Debian package libloc-database; AUDIT_LOCATION_DB=PATH or off)
    (docs/destinations.md).

    \b
    Example:
      audit geoip import asn-ipv4.csv asn-ipv6.csv --label "ip-location-db asn"
      audit geoip info
      audit geoip lookup 203.205.254.157 --table
    """


@geoip_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--label", "label", default=None, help="Name of the data, shown as evidence (default: the file names)."
)
@click.option(
    "--date", "date", default=None, metavar="YYYY-MM-DD",
    help="Date of the data, YYYY-MM-DD or YYYY-MM (default: a date in the file names, else their modification date).",
)  # fmt: skip
@format_options()
@translate_errors
def geoip_import_cmd(files: tuple[str, ...], label: str | None, date: str | None, fmt: str | None) -> None:
    """Import IP-to-ASN range files as the ASN table every command then uses.

    FILES: 'start,end,asn,organisation' CSV (ip-location-db asn, DB-IP IP-to-ASN Lite; IP or
    integer bounds), GeoLite2-ASN CSV (network,asn,org), iptoasn.com TSV or CAIDA RouteViews
    prefix2as, plain or .gz. Give IPv4 and
    IPv6 files together: the table is replaced as a whole, in $AUDIT_HOME (default
    ~/.local/share/dataflow-audit).
    You supply the files; nothing is downloaded.

    \b
    Example:
      audit geoip import ip2asn-combined.tsv.gz --label iptoasn.com
    """
    from audit.enrich.asntable import import_table

    def progress(line: str) -> None:
        click.echo(safe_cell(line), err=True)

    summary = import_table([Path(f) for f in files], label=label, date=date, progress=progress)
    emit(render_summary(resolve_format(fmt), summary.to_dict(), summary.describe()))


#: ``audit geoip info`` columns, one row per database in use.
GEOIP_INFO_COLUMNS = ("role", "database", "facts", "path")


@geoip_group.command("info")
@_mmdb_option
@format_options()
@translate_errors
def geoip_info_cmd(mmdb: tuple[str, ...], fmt: str | None) -> None:
    """Show which databases answer server location and network owner, in order of preference.

    \b
    Example:
      audit geoip info --mmdb GeoLite2-City.mmdb
      audit geoip info --json
    """
    from audit.enrich.geoip import Enricher

    rows = Enricher(list(mmdb)).describe()
    emit(render(resolve_format(fmt), data=rows, rows=rows, columns=GEOIP_INFO_COLUMNS,
                table=lambda: render_table(rows, GEOIP_INFO_COLUMNS, max_width=200)))  # fmt: skip
    if not any("asn" in r["facts"] for r in rows):
        note(
            "no database in use gives AS numbers (only organisation names); install Debian's "
            "libloc-database, run `audit geoip import FILE...`, or pass an ASN .mmdb (docs/destinations.md)"
        )


@geoip_group.command("lookup")
@click.argument("ips", nargs=-1, required=True)
@_mmdb_option
@format_options()
@translate_errors
def geoip_lookup_cmd(ips: tuple[str, ...], mmdb: tuple[str, ...], fmt: str | None) -> None:
    """Server location and network owner of IP addresses, with the database that answered.

    Takes IP addresses only: a host name is a usage error (nothing is resolved; for the servers an
    app contacted, with their IPs, see `audit destinations`).

    \b
    Example:
      audit geoip lookup 1.1.1.1 2606:4700:4700::1111 --json
    """
    from audit.enrich.geoip import Enricher
    from audit.names import is_ip

    bad = [ip for ip in ips if not is_ip(ip)]
    if bad:
        raise click.UsageError(f"{', '.join(bad)}: not an IP address (host names are not resolved)")
    enricher = Enricher(list(mmdb))
    rows = []
    for ip in ips:
        info = enricher.ip_info(ip)
        rows.append(
            {
                "ip": info.ip, "scope": info.scope, "server_country": info.country, "server_city": info.city,
                "asn": info.asn, "asn_org": info.asn_org, "geo_database": info.evidence,
                "geo_database_date": info.database_date, "network_flags": list(info.network_flags),
                "asn_source": info.asn_source, "asn_org_source": info.asn_org_source,
                "via_nat64": info.nat64_ipv4 is not None, "nat64_ipv4": info.nat64_ipv4,
            }
        )  # fmt: skip
    emit(render_rows(rows, resolve_format(fmt), GEOIP_COLUMNS, GEOIP_TABLE_COLUMNS, ""))


# ---- audit pii -------------------------------------------------------------------------------

PII_COLUMNS = ("data_type", "host", "requests", "confidence", "encodings", "locations", "masked")


@main.command("pii")
@db_option
@click.option(
    "--device",
    "device",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Device profile (TOML/JSON, docs/device-profile.md). Without it only the pattern detectors run.",
)
@_app_option
@format_options()
@_output_option("Write the summary to FILE (missing folders are created).")
@translate_errors
def pii_cmd(db: str, device: str | None, app: str | None, fmt: str | None, output: str | None) -> None:
    """Re-run personal-data detection over the requests stored in a case file.

    Replaces the data findings of every stored request and prints a summary per data type and
    destination host. Only masked values are ever shown (docs/pii.md).

    \b
    Example:
      audit pii --db case.sqlite --device device.toml
      audit pii --db case.sqlite --device device.toml --app com.example.app --json
    """
    from audit.rescan import rescan_store
    from audit.traffic.pii import PiiDetector
    from audit.traffic.profile import load_profile

    detector = PiiDetector(load_profile(device) if device else None)
    with _case(db, app) as store:
        if device:
            store.record_input("device-profile", device, None, app or "")
        result = rescan_store(store, detector, app)
    rows = [r.to_dict() for r in result.rows]

    def table() -> str:
        head = f"{result.requests} requests scanned, {result.with_findings} with personal data"
        return head + ("\n\n" + render_table(rows, PII_COLUMNS) if rows else "")

    emit(
        render(
            resolve_format(fmt, output), data=result.to_dict(), rows=rows, columns=PII_COLUMNS, table=table
        ),
        output,
    )


# ---- audit batch / corpus -------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _ProgressLine:
    """One self-overwriting line on a terminal's stderr (nothing when piped); failures printed above it."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, p: Any) -> None:
        if not self.tty:
            return
        line = (f"{p.finished}/{p.total} apps · {p.done} done · {p.failed} failed · {p.rate:.1f} apps/min"
                f" · ETA {_duration(p.eta)}")  # fmt: skip
        click.echo("\r\x1b[2K" + line, err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[2K", err=True, nl=False)
            self.shown = False


@main.command("batch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@db_option
@click.option("--workers", "workers", type=click.IntRange(min=1), default=None,
              help="Scan processes on this machine (default: the number of cores).")  # fmt: skip
@click.option("--scheduler", "scheduler", metavar="tcp://HOST:8786", default=None,
              help="Run the scans on this Dask distributed cluster instead (pip install 'dataflow-audit[dask]').")  # fmt: skip
@click.option("--timeout", "timeout", type=click.FloatRange(min=1), default=600, show_default=True, metavar="S",
              help="Per-app time limit in seconds: a scan past it is killed and recorded as failed.")  # fmt: skip
@click.option("--max-memory", "max_memory", type=click.IntRange(min=128), default=4096, show_default=True, metavar="MB",
              help="Per-app memory limit (address space of the scan process), in MB.")  # fmt: skip
@click.option(
    "--resume",
    "resume",
    is_flag=True,
    help="Continue a batch in this case file: packages already recorded are skipped.",
)
@format_options(help="Summary format (default: table on a terminal, JSON when piped).")
@translate_errors
def batch_cmd(
    paths: tuple[str, ...], db: str, workers: int | None, scheduler: str | None, timeout: float, max_memory: int,
    resume: bool, fmt: str | None,
) -> None:  # fmt: skip
    """Scan every Android package under PATHS (recursively) into one case file, in parallel.

    Packages are recognised by content. Each distinct package (SHA-256) is scanned once and
    recorded once with every path it was found at; a package that cannot be scanned (hostile,
    past --timeout or --max-memory) is recorded as failed with the reason and the run goes on.
    Runs on local worker processes, or on an existing Dask cluster with --scheduler (the workers
    must see the files at the same paths). A killed run continues with --resume. Progress on a
    terminal; exit status 1 when any package failed. Then: `audit corpus`. Details: docs/corpus.md.

    \b
    Example:
      audit batch apks/ --db corpus.sqlite --workers 2
      audit batch /shared/apks --db corpus.sqlite --scheduler tcp://10.0.0.5:8786 --resume
    """
    from audit.batch import make_backend, run_batch
    from audit.store import Store

    if scheduler and workers:
        raise click.UsageError(
            "--workers is for the local pool; a Dask cluster has its own workers (give one of them)"
        )
    line = _ProgressLine()
    with Store(db) as store:
        backend = make_backend(workers, scheduler)
        interrupted = True
        try:
            summary = run_batch(paths, store, backend, timeout=timeout, max_memory_mb=max_memory, resume=resume,
                                progress=line)  # fmt: skip
            interrupted = False
        except KeyboardInterrupt:
            line.clear()
            raise click.ClickException(
                f"interrupted; continue with: audit batch … --db {safe_cell(db)} --resume"
            ) from None
        finally:
            line.clear()
            backend.close(interrupted=interrupted)
    emit(render_summary(resolve_format(fmt), summary.to_dict(), summary.describe()))
    if summary.failed:
        click.get_current_context().exit(ExitStatus.ERROR)


#: ``audit corpus --format csv`` columns, one row per SDK (docs/corpus.md).
CORPUS_CSV_COLUMNS = ("id", "name", "owner", "owner_country", "category", "apps", "share", "network_only")


def _corpus_table(c: Any) -> str:
    """The corpus as text: a head line, then the main tables (most apps first)."""
    n = c.apps
    head = (f"{n} apps, {len(c.failed)} failed, {len(c.ignored)} not Android packages; "
            f"SDKs per app: mean {c.sdks_per_app['mean']}, median {c.sdks_per_app['median']}, max {c.sdks_per_app['max']}")  # fmt: skip
    blocks = [safe_cell(head)]
    sdks = [{**r, "share": f"{r['share'] * 100:.0f}%"} for r in c.sdks[:30]]
    if sdks:
        blocks.append(
            render_table(sdks, ("id", "owner", "owner_country", "category", "apps", "share", "network_only"))
        )
    countries = [
        {"owner country": cc, "apps": k, "share": f"{k / n * 100:.0f}%" if n else ""}
        for cc, k in c.countries.items()
    ]
    if countries:
        blocks.append(render_table(countries, ("owner country", "apps", "share")))
    if c.signers:
        blocks.append(render_table([{**s, "sha256": s["sha256"][:16] + "…"} for s in c.signers[:20]],
                                   ("subject", "sha256", "schemes", "apps", "packages")))  # fmt: skip
    for r in c.resigned:
        copies = "; ".join(
            f"{', '.join(x[:12] for x in k['signers']) or 'unsigned'}: {len(k['apps'])} copies"
            for k in r["copies"]
        )
        blocks.append(safe_cell(f"re-signed: {r['package']}: {copies}"))
    for f in c.failed:
        blocks.append(safe_cell(f"failed: {f['reason']}"))
    return "\n\n".join(blocks)


@main.command("corpus")
@db_option
@format_options(
    help="Output on stdout (default: table on a terminal, JSON when piped; with -o only a summary line)."
)
@_output_option("Write the corpus HTML report to FILE (missing folders are created).")
@translate_errors
def corpus_cmd(db: str, fmt: str | None, output: str | None) -> None:
    """The corpus view of a case filled by `audit batch`: which SDKs, companies and countries.

    Per SDK, owner company and owner home country: how many apps embed it (code evidence only)
    and which; per category; SDKs per app; the most common endpoint domains and their owners;
    apps per signer and re-signed copies (same package, another signer); failures with reasons.
    JSON keys: docs/corpus.md.

    \b
    Example:
      audit corpus --db corpus.sqlite --format table
      audit corpus --db corpus.sqlite --format json > corpus.json
      audit corpus --db corpus.sqlite -o reports/corpus.html
    """
    from audit.corpus import collect_corpus

    with _case(db) as store:
        c = collect_corpus(store)
    if output:
        from audit.report.corpus import write_corpus_report

        write_corpus_report(c, output)
        if not fmt:
            click.echo(f"{safe_cell(output)}: {c.apps} apps, {len(c.sdks)} SDKs, {len(c.countries)} owner countries, "
                       f"{len(c.failed)} failed")  # fmt: skip
            return
    emit(
        render(
            resolve_format(fmt),
            data=c.to_dict(),
            rows=c.sdks,
            columns=CORPUS_CSV_COLUMNS,
            table=lambda: _corpus_table(c),
        )
    )


# ---- audit scan ---------------------------------------------------------------------------------

#: ``audit scan --csv`` columns, one row per endpoint (docs/cli.md).
SCAN_CSV_COLUMNS = (
    "file", "package", "value", "kind", "host", "domain", "placeholder", "sdk", "source_kinds", "files",
    "classes", "network", "network_evidence", "company", "company_country",
)  # fmt: skip


def _scan_rows(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "file": result.app.file,
            "package": result.app.package,
            "value": e.value,
            "kind": e.kind,
            "host": e.host,
            "domain": e.domain,
            "placeholder": "yes" if e.placeholder else "no",
            "sdk": e.sdk,
            "source_kinds": sorted({s.kind for s in e.sources}),
            "files": sorted({s.file for s in e.sources}),
            "classes": list(e.classes),
            "network": "yes" if e.network else "no",
            "network_evidence": e.network_evidence,
            "company": e.company,
            "company_country": e.company_country,
        }
        for e in result.endpoints
    ]


def _scan_table(result: Any) -> str:
    a = result.app
    lines = [
        f"{safe_cell(a.file)}: {a.format}, package {safe_cell(a.package or '?')} "
        f"{safe_cell(a.version_name or '')} ({safe_cell(a.version_code or '?')}), sha256 {a.sha256[:16]}…",
        f"{len(result.servers)} endpoints, {len(result.sdks)} SDKs, {len(result.permissions)} permissions"
        + (f" ({len(result.endpoints) - len(result.servers)} placeholders or strings set aside as not servers)"
           if len(result.endpoints) > len(result.servers) else ""),
    ]  # fmt: skip
    if result.sdks:
        sdks = [
            {"sdk": s.id, "owner": s.owner, "country": s.owner_country, "category": s.category,
             "classes": s.class_count, "evidence": s.evidence}
            for s in result.sdks
        ]  # fmt: skip
        lines += ["", render_table(sdks, ("sdk", "owner", "country", "category", "classes", "evidence"), 80)]
    if result.capabilities:
        lines += [
            "",
            "capabilities: " + ", ".join(f"{s.name} ({s.class_count} classes)" for s in result.capabilities),
        ]
    if result.sdk_mentions:
        lines += [
            "",
            "named, code not in the app: "
            + safe_cell(
                ", ".join(f"{s.name} ({s.presence}: {', '.join(s.hosts[:3])})" for s in result.sdk_mentions)
            ),
        ]
    shown = [e for e in result.endpoints if e.network]
    if shown:
        rows = [
            {"endpoint": e.value, "kind": e.kind, "sdk": e.sdk,
             "placeholder": "yes" if e.placeholder else "", "found in": sorted({s.file for s in e.sources})}
            for e in shown
        ]  # fmt: skip
        lines += ["", render_table(rows, ("endpoint", "kind", "sdk", "placeholder", "found in"), 70)]
    if result.data_access:
        lines += ["", "data access: " + ", ".join(d.type for d in result.data_access)]
    if a.format != "dex":
        signed = [f"{s.subject or '?'} (sha256 {s.sha256[:16]}…, {'+'.join(s.schemes)})" for s in a.signers]
        lines += [
            "",
            safe_cell("signed by: " + ("; ".join(signed) if signed else "nobody (no v1/v2/v3 signature)")),
        ]
    lines += _transport_lines(result.transport)
    return "\n".join(lines)


def _transport_lines(t: Any) -> list[str]:
    """The scan table's transport-security summary (docs/scan-json.md, ``transport_security``)."""
    pinned = [d.scope for d in t.pinned_domains]
    parts = [
        f"pinned in config: {', '.join(pinned)}" if pinned else "no pins in config",
        f"{len(t.code_pins)} pin(s) in code" + (f" ({', '.join(sorted({c for p in t.code_pins for c in p.classes})[:3])})"
                                                 if t.code_pins else ""),
        "cleartext " + {None: "unknown", True: "allowed", False: "blocked"}[t.cleartext_default] + " by default",
        "user CAs " + {None: "unknown", True: "trusted", False: "not trusted"}[t.user_cas_trusted],
    ]  # fmt: skip
    if t.pins_overridden:
        parts.append("pins overridden (overridePins/debug)")
    if t.pinning_libraries:
        parts.append("pinning-capable libraries: " + ", ".join(t.pinning_libraries))
    clear = [d.domain for d in t.domains if d.cleartext]
    if clear:
        parts.append("cleartext allowed for: " + ", ".join(clear[:5]) + (" …" if len(clear) > 5 else ""))
    return ["", safe_cell("transport: " + "; ".join(parts))]


@main.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@format_options()
@_output_option()
@click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also store each scan in this case file (SQLite). Nothing is stored without it.",
)
def scan_cmd(paths: tuple[str, ...], fmt: str | None, output: str | None, db: str | None) -> None:
    """Scan APKs, split bundles (.apks/.xapk/.apkm), app bundles (.aab) or bare DEX files.

    Reports every endpoint (URL, host, IP) with where it was found and which code loads it, the
    SDKs (by code and by network), permissions and the data they reach. Inputs are recognised by
    content. A bad input is reported in one line and the others are still scanned; the exit status
    is then 1 (also when part of an input could not be read). JSON schema: docs/scan-json.md.

    \b
    Example:
      audit scan app.apk
      audit scan app.apk split.apks --json -o scan.json
      audit scan app.xapk --csv > endpoints.csv
      audit scan app.apk --db case.sqlite
    """
    from audit.static.scanner import scan_path

    results = []
    failed = False
    for path in paths:
        try:
            result = scan_path(path)
        except AuditError as e:
            failed = True
            error(str(e))
            continue
        for problem in result.errors:
            failed = True
            error(f"{path}: {problem}")
        for part in result.not_read:
            note(f"{path}: {part}")
        results.append(result)
    if db and results:
        _store_scans(db, results)
    if results:
        kind = resolve_format(fmt, output)
        # CSV rows only for CSV: 100,000 endpoints as row dicts are memory a JSON or table run never uses
        text = render(
            kind, data=results[0].to_dict() if len(paths) == 1 else [r.to_dict() for r in results],
            rows=[row for r in results for row in _scan_rows(r)] if kind == "csv" else [], columns=SCAN_CSV_COLUMNS,
            table=lambda: "\n\n".join(_scan_table(r) for r in results),
        )  # fmt: skip
        _emit_or_fail(text, output)
    if failed:
        click.get_current_context().exit(ExitStatus.ERROR)


@translate_errors
def _emit_or_fail(text: str, output: str | None) -> None:
    emit(text, output)


@translate_errors
def _store_scans(db: str, results: list[Any]) -> None:
    from audit.store import Store

    with Store(db) as store:
        for r in results:
            store.add_scan(r)
