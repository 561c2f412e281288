"""The mitmproxy addon: records every destination an app reaches into the case file.

``addons/dataflow.py`` loads :class:`Recorder`; it works in every proxy mode (regular, transparent,
wireguard, local, reverse, socks5, dns). What it records (``docs/capture.md``):

- every HTTP(S)/HTTP2/HTTP3 flow (``response``; failed ones via ``error``) and WebSocket
  (``websocket_end``, one row with the handshake and all messages);
- connections that yielded no flow: TLS interception failed (the app pins its certificate or does
  not trust the CA: ``tls="failed"``) or passed through unread (``ignore_hosts``,
  ``tls="passthrough"``), from the ``server_connect*``/``tls_*`` hooks, written when the client
  disconnects. A connection that yields flows is ``intercepted`` and gets no row of its own;
- raw TCP/UDP flows (``tcp_end``/``udp_end`` and errors), TLS/QUIC recognised by their ClientHello;
- DNS questions and answers (``dns_response``) as DNS records, so a bare IP later gets its name.

Hooks never raise into mitmproxy: an error is logged and the proxy keeps serving. Records are written
by a :class:`~audit.traffic.batch_writer.BatchWriter` thread, never on the event loop.
"""

from __future__ import annotations

import functools
import gc
import logging
import re
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from mitmproxy import exceptions

from audit.enrich.geoip import Enricher, ip_scope, normalize_ip
from audit.errors import AuditError
from audit.models import VANTAGE_INPUT, Connection, DnsRecord
from audit.names import normalize_host
from audit.store import Store, default_db_path
from audit.traffic import flowconv
from audit.traffic.batch_writer import BatchWriter, Detector, load_detector
from audit.traffic.flowconv import address_text, http_connection, peer_ip, text
from audit.traffic.writer_process import ProcessWriter

log = logging.getLogger(__name__)

SOURCE = "live"
DEFAULT_BODY_LIMIT = 65536
DEFAULT_FLUSH_MS = 500
META_KEY = "audit"
OPEN_AT_EXIT = "still open when mitmproxy stopped"


F = TypeVar("F", bound=Callable[..., Any])

OPTION_NAMES = (
    "audit_db", "audit_app", "audit_device", "audit_mmdb", "audit_asn_table", "audit_location_db", "audit_body_limit", "audit_flush_interval",
    "audit_vantage",
)  # fmt: skip


def vantage_option(value: str | None) -> str | None:
    """The ISO code of an ``audit_vantage`` value (None when unset); OptionsError otherwise."""
    if not value:
        return None
    from audit.enrich.country import country_code

    try:
        code, how = country_code(value, "audit_vantage")
    except AuditError as e:
        raise exceptions.OptionsError(str(e)) from e
    if how:
        log.info("%s", how)
    return code


def guarded(f: F) -> F:
    """A hook that logs its own errors: a recorder bug must never break the user's proxy."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except Exception as e:
            log.error(
                "dataflow-audit: %s hook failed: %s: %s", f.__name__, type(e).__name__, e, exc_info=True
            )
            return None

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Pure helpers: mitmproxy objects (duck-typed, so that 11.x and 12.x both work) -> our records
# --------------------------------------------------------------------------------------------


def stream_connection(flow: Any, *, app: str) -> Connection:
    """A raw TCP or UDP flow; passed-through TLS and QUIC are recognised by their ClientHello."""
    return flowconv.stream_connection(flow, app=app, source=SOURCE)


def dns_records(flow: Any, *, app: str) -> list[Connection | DnsRecord]:
    """DNS questions with their answers; plus a ``dns`` connection when an upstream resolver was
    contacted (in DNS mode mitmproxy usually answers itself)."""
    return flowconv.dns_records(flow, app=app, source=SOURCE)


def host_rules(ignore_hosts: Sequence[str], allow_hosts: Sequence[str]) -> Callable[[str, int], bool]:
    """mitmproxy's ignore/allow rule as a predicate on (host, port): patterns are regular
    expressions searched in ``host:port``, case-insensitively; invalid ones are skipped."""

    def compile_all(patterns: Sequence[str]) -> list[re.Pattern[str]]:
        out = []
        for p in patterns:
            try:
                out.append(re.compile(p, re.IGNORECASE))
            except re.error:
                continue
        return out

    ignore, allow = compile_all(ignore_hosts), compile_all(allow_hosts)

    def ignored(host: str, port: int) -> bool:
        spec = f"{host}:{port}"
        if ignore and any(r.search(spec) for r in ignore):
            return True
        return bool(allow) and not any(r.search(spec) for r in allow)

    return ignored


# --------------------------------------------------------------------------------------------
# Connections that yield no flow (pinning, passthrough)
# --------------------------------------------------------------------------------------------


@dataclass
class ConnState:
    """What the hooks saw of one client connection."""

    ts: float
    client: str | None = None
    transport: str = "tcp"
    target: tuple[str, int] | None = None
    """Requested destination (CONNECT target, transparent destination, SNI-less reverse target)."""
    ip: str | None = None
    port: int | None = None
    sni: str | None = None
    alpn_offers: tuple[str, ...] = ()
    tls_seen: bool = False
    tls: str | None = None
    tls_version: str | None = None
    server_attempted: bool = False
    error: str | None = None
    has_flows: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class ConnectionTracker:
    """Follows client connections through the connection-level hooks and, when one closes
    without having carried any flow, turns it into a ``tls``/``tcp``/``quic`` :class:`Connection`
    (``tls`` = failed, passthrough or — a handshake with no request — intercepted).

    ``ignored(host, port)`` tells whether mitmproxy's ``ignore_hosts``/``allow_hosts`` make it relay
    a connection unread; a connection without TLS, flows or such a rule was just idle (``none``)."""

    def __init__(self, ignored: Callable[[str, int], bool] | None = None) -> None:
        self.states: dict[str, ConnState] = {}
        self.ignored = ignored or (lambda host, port: False)

    def state(self, client: Any) -> ConnState:
        st = self.states.get(client.id)
        if st is None:
            st = ConnState(
                ts=client.timestamp_start or time.time(),
                client=address_text(getattr(client, "peername", None)),
                transport=str(getattr(client, "transport_protocol", "tcp") or "tcp"),
            )
            self.states[client.id] = st
        return st

    def server(self, client: Any, server: Any) -> ConnState:
        st = self.state(client)
        st.server_attempted = True
        if server.address:
            st.target = (str(server.address[0]), int(server.address[1]))
        st.sni = st.sni or server.sni or None
        ip = peer_ip(server.peername)
        if ip:
            st.ip, st.port = ip, int(server.peername[1])
        if server.error and not st.error:
            st.error = str(server.error)
        return st

    def finish(self, client: Any, *, app: str) -> Connection | None:
        st = self.states.pop(client.id, None)
        if st is None or st.has_flows or not (st.server_attempted or st.tls_seen):
            return None
        target_host = normalize_host(st.target[0]) if st.target else None
        port = st.port or (st.target[1] if st.target else None)
        if st.tls is not None:
            tls = st.tls
        elif st.tls_seen:
            tls = "failed"  # handshake started, neither completed nor failed: the client hung up
        elif port is not None and any(self.ignored(h, port) for h in (target_host, st.sni, st.ip) if h):
            tls = "passthrough"  # relayed without looking (ignore_hosts / allow_hosts)
        else:
            tls = "unknown"  # nothing was sent: neither TLS nor plaintext was seen (issue 12)
        if st.tls_seen:
            protocol = "quic" if st.transport == "udp" else "tls"
        else:
            protocol = "udp" if st.transport == "udp" else "tcp"
        error = st.error
        if error is None and tls == "failed":
            error = "client closed the connection during the TLS handshake"
        elif error is None and tls == "intercepted":
            error = "no request on the intercepted connection"
        elif error is None and tls == "unknown":
            error = "closed before any request"
        ip = st.ip or (normalize_ip(target_host) if target_host else None)
        return Connection(
            ts=st.ts,
            end_ts=getattr(client, "timestamp_end", None) or time.time(),
            source=SOURCE,
            protocol=protocol,
            tls=tls,
            app=app,
            host=(st.sni or target_host or ip),
            sni=st.sni,
            ip=ip,
            port=port,
            client=st.client,
            tls_version=st.tls_version,
            alpn=",".join(st.alpn_offers) or None,
            error=error,
        )

    def drain(self, *, app: str) -> list[Connection]:
        """Finish every still-open connection (proxy shutting down)."""
        out = []
        for cid in list(self.states):
            st = self.states[cid]
            fake = _ClosedClient(cid, st.ts)
            c = self.finish(fake, app=app)
            if c is not None:
                out.append(c)
        return out


@dataclass
class _ClosedClient:
    id: str
    timestamp_start: float
    timestamp_end: float | None = None


# --------------------------------------------------------------------------------------------
# The addon
# --------------------------------------------------------------------------------------------


class Recorder:
    """mitmproxy addon: every flow and connection → the case file (see module docstring).

    ``writer="process"`` (default) writes through a child process
    (:class:`~audit.traffic.writer_process.ProcessWriter`) so that data detection and SQLite do not
    compete with the proxy for the GIL; ``"thread"`` keeps everything in this process."""

    def __init__(self, writer: str = "process") -> None:
        if writer not in ("process", "thread"):
            raise ValueError(f"writer must be 'process' or 'thread', not {writer!r}")
        self.writer_kind = writer
        self.writer: BatchWriter | ProcessWriter | None = None
        self.tracker = ConnectionTracker()
        self.open_flows: dict[str, Any] = {}
        """Flows seen starting and not written yet, by id (see :meth:`done`)."""
        self.app = ""
        self.body_limit = DEFAULT_BODY_LIMIT
        self.flush_interval = DEFAULT_FLUSH_MS / 1000
        self.device: str | None = None
        self.vantage: str | None = None
        """ISO code of the country the device is in (``audit_vantage``)."""
        self.mmdb: tuple[str, ...] = ()
        self.asn_table: str | None = None
        self.location_db: str | None = None
        self.detector: Detector | None = None
        self.enricher: Enricher | None = None
        self.db_path: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def running(self) -> None:
        # Each recorded request allocates a few small objects, which makes CPython's cyclic GC run
        # its full collections over mitmproxy's whole (mostly start-up) heap more often. Freezing
        # what exists once the proxy runs takes those objects out of every later collection
        # (docs/benchmarks.md: about 5 % of proxy CPU per request). Nothing is leaked by it.
        gc.freeze()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "audit_db", str, default_db_path(),
            "Case file (SQLite) the dataflow-audit recorder writes to; created if missing. "
            "Default: $AUDIT_DB or ./audit.sqlite.",
        )  # fmt: skip
        loader.add_option(
            "audit_app", str, "",
            "Label of the app under test, stored with every record (e.g. its package name); "
            "lets one case file hold several apps.",
        )  # fmt: skip
        loader.add_option(
            "audit_device", typing.Optional[str], None,  # noqa: UP007,UP045 - mitmproxy's --set parses Optional[str]
            "Device profile (TOML/JSON, docs/device-profile.md) with the test device's identifiers, "
            "so that requests carrying them are flagged as known personal data.",
        )  # fmt: skip
        loader.add_option(
            "audit_mmdb", Sequence[str], [],
            "MaxMind/DB-IP .mmdb files (City, Country or ASN) used to geo-locate server IPs instead "
            "of the embedded database; repeat the option for several files.",
        )  # fmt: skip
        loader.add_option(
            "audit_asn_table", str, "",
            "ASN table (made by `audit geoip import`) giving AS numbers of server IPs. Default: the "
            "one imported into $AUDIT_HOME, if any.",
        )  # fmt: skip
        loader.add_option(
            "audit_location_db", str, "",
            "IPFire location database (libloc location.db) giving AS numbers of server IPs; 'off' for "
            "none. Default: $AUDIT_LOCATION_DB, else the system copy (Debian package libloc-database).",
        )  # fmt: skip
        loader.add_option(
            "audit_vantage", typing.Optional[str], None,  # noqa: UP007,UP045 - mitmproxy's --set parses Optional[str]
            "Country the device is in while it is captured (ISO 3166-1 code such as US, or an unambiguous "
            "name), recorded with the capture: the report shows server countries as seen from there.",
        )  # fmt: skip
        loader.add_option(
            "audit_body_limit", int, DEFAULT_BODY_LIMIT,
            "Bytes of each request body kept in the case file for data detection (0 keeps none).",
        )  # fmt: skip
        loader.add_option(
            "audit_flush_interval", int, DEFAULT_FLUSH_MS,
            "Milliseconds between batched writes to the case file; a crash loses at most this much.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        opts = ctx.options
        if self.writer is None:
            # First call: set everything up, whichever keys this host reported as changed.
            updated = set(updated) | set(OPTION_NAMES)
        if "audit_body_limit" in updated:
            if opts.audit_body_limit < 0:
                raise exceptions.OptionsError("audit_body_limit must be >= 0")
            self.body_limit = opts.audit_body_limit
        if "audit_flush_interval" in updated:
            if opts.audit_flush_interval <= 0:
                raise exceptions.OptionsError("audit_flush_interval must be > 0 (milliseconds)")
            self.flush_interval = opts.audit_flush_interval / 1000
            if self.writer is not None:
                self.writer.flush_interval = self.flush_interval
        if "audit_app" in updated:
            self.app = opts.audit_app
        if updated & {"ignore_hosts", "allow_hosts"} or self.writer is None:
            self.tracker.ignored = host_rules(
                getattr(opts, "ignore_hosts", None) or (), getattr(opts, "allow_hosts", None) or ()
            )
        if "audit_device" in updated:
            try:
                # Loaded here (also in process mode) so that a bad profile fails at startup.
                self.detector = load_detector(opts.audit_device)
            except AuditError as e:
                raise exceptions.OptionsError(f"audit_device: {e}") from e
            self.device = opts.audit_device
        if "audit_vantage" in updated:
            self.vantage = vantage_option(opts.audit_vantage)
        old_enricher = None
        geo = {"audit_mmdb", "audit_asn_table", "audit_location_db"}
        if updated & geo:
            from audit.enrich.locationdb import is_off

            location_db: bool | str = opts.audit_location_db or True
            if opts.audit_location_db and is_off(opts.audit_location_db):
                location_db = False
            try:
                enricher = Enricher(
                    list(opts.audit_mmdb), asn_table=opts.audit_asn_table or True, location_db=location_db
                )
            except AuditError as e:
                raise exceptions.OptionsError(f"audit_mmdb/audit_asn_table/audit_location_db: {e}") from e
            old_enricher, self.enricher = self.enricher, enricher
            self.mmdb = tuple(opts.audit_mmdb)
            self.asn_table = enricher.asn_table.path if enricher.asn_table is not None else None
            self.location_db = enricher.location_db.path if enricher.location_db is not None else None
        if "audit_db" in updated:
            self._open(opts.audit_db)
        else:
            if updated & ({"audit_device"} | geo):
                self._configure_writer()
            if updated & ({"audit_app", "audit_device", "audit_vantage"} | geo):
                self._record_inputs()
        if old_enricher is not None:
            # Its files (.mmdb readers, the ASN table) are closed once nothing can still be using it.
            if isinstance(self.writer, BatchWriter):
                self.writer.flush()
            old_enricher.close()

    def _configure_writer(self) -> None:
        if isinstance(self.writer, ProcessWriter):
            self.writer.configure(
                device=self.device, mmdb=self.mmdb, asn_table=self.asn_table, location_db=self.location_db
            )
        elif self.writer is not None:
            self.writer.detector, self.writer.enricher = self.detector, self.enricher

    def _open(self, path: str) -> None:
        try:
            store = Store(path, check_same_thread=False)  # validates (and migrates) up front
        except AuditError as e:
            raise exceptions.OptionsError(f"audit_db: {e}") from e
        if self.writer is not None:
            self.writer.close()
        self.db_path = path
        if self.writer_kind == "process":
            store.close()
            self.writer = ProcessWriter(
                path, flush_interval=self.flush_interval, device=self.device, mmdb=self.mmdb, asn_table=self.asn_table,
                location_db=self.location_db,
            )  # fmt: skip
        else:
            self.writer = BatchWriter(
                store, flush_interval=self.flush_interval, detector=self.detector, enricher=self.enricher
            )
        self._record_inputs()

    def _record_inputs(self) -> None:
        """Note the capture and its configuration in the case's inputs (evidence of how it was made)."""
        from mitmproxy import ctx

        if self.writer is None:
            return
        mode = ",".join(getattr(ctx.options, "mode", None) or ["regular"])
        self.writer.record_input("live", f"mitmproxy {mode}", app=self.app)
        if self.device:
            self.writer.record_input("device-profile", self.device, app=self.app)
        if self.vantage:
            self.writer.record_input(VANTAGE_INPUT, self.vantage, app=self.app)
        for p in self.mmdb:
            self.writer.record_input("mmdb", p, app=self.app)
        if self.asn_table:
            self.writer.record_input("asn-table", self.asn_table, app=self.app)
        if self.location_db:
            self.writer.record_input("location-db", self.location_db, app=self.app)

    def done(self) -> None:
        if self.writer is None:
            return
        # mitmproxy cancels the connections still open when it stops without calling their end
        # hooks (tcp_end, udp_end, websocket_end, client_disconnected): a QUIC or push connection
        # of the app would be lost. Write those flows as far as they got.
        for flow in list(self.open_flows.values()):
            self._record_open(flow)
        for c in self.tracker.drain(app=self.app):
            self.writer.put(c)
        self.writer.close()
        s = self.writer.stats
        log.info(
            "dataflow-audit: %d connections, %d DNS records written to %s (%d dropped, %d skipped as unstorable)",
            s.connections, s.dns, self.db_path, s.dropped, s.skipped,
        )  # fmt: skip
        if s.skipped:
            log.warning("dataflow-audit: %d record(s) could not be stored and were skipped; the log above names "
                        "their flows", s.skipped)  # fmt: skip
        self.writer = None

    def _put(self, record: Connection | DnsRecord, flow_id: str | None = None) -> None:
        if self.writer is not None:
            self.writer.put(record, flow_id)

    @staticmethod
    def _annotate(flow: Any, conn: Connection) -> None:
        flow.metadata[META_KEY] = {
            "recorded": True,
            "protocol": conn.protocol,
            "tls": conn.tls,
            "ip_scope": ip_scope(conn.ip) if conn.ip else None,
        }

    @staticmethod
    def _recorded(flow: Any) -> bool:
        return bool(flow.metadata.get(META_KEY, {}).get("recorded"))

    def _mark_flow(self, flow: Any) -> None:
        self.tracker.state(flow.client_conn).has_flows = True
        if not self._recorded(flow):
            self.open_flows[flow.id] = flow

    @guarded
    def _record_open(self, flow: Any) -> None:
        if flow.type == "dns":
            self._record_dns(flow)  # the question, without an answer
            return
        if flow.type == "http":
            conn = http_connection(flow, app=self.app, source=SOURCE, body_limit=self.body_limit)
        else:
            conn = stream_connection(flow, app=self.app)
        if conn.error is None:
            conn = replace(conn, error=OPEN_AT_EXIT)
        self._annotate(flow, conn)
        self.open_flows.pop(flow.id, None)
        self._put(conn, flow.id)

    # -- HTTP / WebSocket ----------------------------------------------------------------------

    @guarded
    def requestheaders(self, flow: Any) -> None:
        self._mark_flow(flow)

    @guarded
    def response(self, flow: Any) -> None:
        if flow.websocket is not None or self._recorded(flow):
            return  # a WebSocket is written once, at websocket_end
        self._record_http(flow)

    @guarded
    def error(self, flow: Any) -> None:
        if self._recorded(flow) or flow.request is None:
            return
        ws = flow.websocket
        if ws is not None and getattr(ws, "timestamp_end", None) is None and flow.live:
            return  # websocket_end follows
        self._record_http(flow)

    @guarded
    def websocket_start(self, flow: Any) -> None:
        self._mark_flow(flow)

    @guarded
    def websocket_end(self, flow: Any) -> None:
        if not self._recorded(flow):
            self._record_http(flow)

    def _record_http(self, flow: Any) -> None:
        self._mark_flow(flow)
        conn = http_connection(flow, app=self.app, source=SOURCE, body_limit=self.body_limit)
        self._annotate(flow, conn)
        self.open_flows.pop(flow.id, None)
        self._put(conn, flow.id)

    # -- TCP / UDP -------------------------------------------------------------------------------

    @guarded
    def tcp_start(self, flow: Any) -> None:
        self._mark_flow(flow)

    @guarded
    def tcp_end(self, flow: Any) -> None:
        self._record_stream(flow)

    @guarded
    def tcp_error(self, flow: Any) -> None:
        self._record_stream(flow)

    @guarded
    def udp_start(self, flow: Any) -> None:
        self._mark_flow(flow)

    @guarded
    def udp_end(self, flow: Any) -> None:
        self._record_stream(flow)

    @guarded
    def udp_error(self, flow: Any) -> None:
        self._record_stream(flow)

    def _record_stream(self, flow: Any) -> None:
        if self._recorded(flow):
            return
        self._mark_flow(flow)
        conn = stream_connection(flow, app=self.app)
        self._annotate(flow, conn)
        self.open_flows.pop(flow.id, None)
        self._put(conn, flow.id)

    # -- DNS ---------------------------------------------------------------------------------------

    @guarded
    def dns_request(self, flow: Any) -> None:
        self._mark_flow(flow)

    @guarded
    def dns_response(self, flow: Any) -> None:
        self._record_dns(flow)

    @guarded
    def dns_error(self, flow: Any) -> None:
        self._record_dns(flow)

    def _record_dns(self, flow: Any) -> None:
        if self._recorded(flow):
            return
        self._mark_flow(flow)
        records = dns_records(flow, app=self.app)
        flow.metadata[META_KEY] = {"recorded": True, "protocol": "dns"}
        self.open_flows.pop(flow.id, None)
        for r in records:
            self._put(r, flow.id)

    # -- connection level: pinning and passthrough ---------------------------------------------

    @guarded
    def client_connected(self, client: Any) -> None:
        self.tracker.state(client)

    @guarded
    def server_connect(self, data: Any) -> None:
        self.tracker.server(data.client, data.server)

    @guarded
    def server_connected(self, data: Any) -> None:
        self.tracker.server(data.client, data.server)

    @guarded
    def server_connect_error(self, data: Any) -> None:
        self.tracker.server(data.client, data.server)

    @guarded
    def tls_clienthello(self, data: Any) -> None:
        ctx_ = data.context
        st = self.tracker.state(ctx_.client)
        st.tls_seen = True
        hello = data.client_hello
        st.sni = hello.sni or st.sni
        st.alpn_offers = tuple(text(a) or "" for a in (hello.alpn_protocols or ()))
        if ctx_.server.address and st.target is None:
            st.target = (str(ctx_.server.address[0]), int(ctx_.server.address[1]))
        if data.ignore_connection:
            st.tls = "passthrough"

    @guarded
    def tls_established_client(self, data: Any) -> None:
        st = self.tracker.state(data.conn)
        st.tls_seen = True
        st.tls = "intercepted"
        st.tls_version = data.conn.tls_version or None

    @guarded
    def tls_failed_client(self, data: Any) -> None:
        st = self.tracker.state(data.conn)
        st.tls_seen = True
        st.tls = "failed"
        st.error = str(data.conn.error or "client TLS handshake failed")
        server = data.context.server
        if server is not None:
            self.tracker.server(data.conn, server)
            st.error = str(data.conn.error or "client TLS handshake failed")

    @guarded
    def tls_failed_server(self, data: Any) -> None:
        st = self.tracker.state(data.context.client)
        if not st.error:
            st.error = f"server TLS handshake failed: {data.conn.error}"

    @guarded
    def client_disconnected(self, client: Any) -> None:
        conn = self.tracker.finish(client, app=self.app)
        if conn is not None:
            self._put(conn, f"client {client.id}")
