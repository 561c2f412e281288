"""A small audit case built in code: one scanned app (``make_scan``) and a capture of it
(``make_traffic``) stored together by ``make_case``, with the company table (``COMPANIES``) that
names their owners. Used by the graph, report, policy, diff and CLI tests.
"""

from __future__ import annotations

from audit.enrich.company import Company, CompanyDb
from audit.models import (
    AppInfo,
    Connection,
    DataAccess,
    DataFinding,
    Endpoint,
    ScanResult,
    Sdk,
    Source,
)
from audit.names import registrable_domain
from audit.store import Store

#: The demo app's package name.
APP = "com.example.messenger"
#: A string hostile everywhere it lands (HTML, attribute, script): report tests check it stays inert.
EVIL = "<script>document.title=\"PWNED\";window.__pwned=1</script><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','1')\">"

#: Owners of the case's domains (one Chinese, two US, one German).
COMPANIES = CompanyDb(
    [
        Company("Tencent", "CN", ("qq.com",)),
        Company("Meta Platforms", "US", ("facebook.com",), aliases=("Meta",)),
        Company("Example Messenger Ltd", "DE", ("example-messenger.com",)),
        Company("Fastly", "US", ("runtime-config.net",)),
    ]
)

#: Server IPs of the captured hosts (api, Bugly, the pinned host, the CDN).
IP_API = "93.184.216.34"
IP_BUGLY = "203.205.219.57"
IP_PINNED = "8.8.8.8"
IP_CDN = "151.101.1.69"


def make_scan(app: str = APP, *, evil: bool = False, extra_hosts: tuple[str, ...] = ()) -> ScanResult:
    """The static scan of ``app``: four endpoints (one placeholder) and two SDKs, plus ``extra_hosts``
    as bare host strings; ``evil`` adds a hostile endpoint and SDK and makes the package name hostile."""
    eps = [
        Endpoint("https://api.example-messenger.com/v1", "api.example-messenger.com", "example-messenger.com", "url",
                 sources=(Source("dex", "classes.dex"),)),
        Endpoint("https://android.bugly.qq.com/rqd", "android.bugly.qq.com", "qq.com", "url",
                 sources=(Source("dex", "classes2.dex"),), classes=("com.tencent.bugly.X",), sdk="tencent_bugly"),
        Endpoint("graph.facebook.com", "graph.facebook.com", "facebook.com", "host",
                 sources=(Source("asset", "assets/cfg.json"),), sdk="facebook"),
        Endpoint("http://localhost:8080", "localhost", None, "url", placeholder=True),
    ]  # fmt: skip
    eps += [
        Endpoint(h, h, registrable_domain(h), "host", sources=(Source("dex", "classes.dex"),))
        for h in extra_hosts
    ]
    sdks = [
        Sdk(
            "tencent_bugly",
            "Tencent Bugly",
            "Tencent",
            "CN",
            "crash",
            ("code: 10 classes under com.tencent.bugly",),
            10,
        ),
        Sdk(
            "facebook",
            "Facebook SDK",
            "Meta",
            "US",
            "analytics",
            ("code: 50 classes under com.facebook",),
            50,
        ),
    ]
    if evil:
        eps.append(Endpoint(f"https://{EVIL}.evil.com/$x$", f"{EVIL}.evil.com", "evil.com", "url",
                            sources=(Source("dex", EVIL),), sdk="evil"))  # fmt: skip
        sdks.append(Sdk("evil", EVIL, EVIL, "XX", EVIL, (EVIL,), 1))
    return ScanResult(
        AppInfo(EVIL if evil else app, "1.0", "1", "ab" * 32, "messenger.apk", "apk"), tuple(eps), tuple(sdks),
        permissions=("android.permission.ACCESS_FINE_LOCATION",),
        data_access=(DataAccess("location", ("android.permission.ACCESS_FINE_LOCATION",)),),
    )  # fmt: skip


def make_traffic(app: str = APP, *, evil: bool = False, t: float = 1_700_000_000.0) -> list[Connection]:
    """A capture of ``app`` from time ``t``: 20 api flows (every fifth carries the IMEI), 5 Bugly flows
    carrying the Android ID, one pinned (failed TLS) and one CDN flow; ``evil`` adds a hostile one."""
    conns = []
    imei = (DataFinding("imei", "query:imei", "plain", "known", "35•••••••••1234"),)
    aid = (DataFinding("android_id", "body.json:$.aid", "plain", "known", "ab••••••••cd"),)
    for i in range(20):
        conns.append(Connection(t + i * 3, "har", "https", "intercepted", app, "api.example-messenger.com", ip=IP_API,
                                port=443, bytes_out=500, bytes_in=3000, findings=imei if i % 5 == 0 else ()))  # fmt: skip
    for i in range(5):
        conns.append(Connection(t + i * 10, "har", "https", "intercepted", app, "android.bugly.qq.com", ip=IP_BUGLY,
                                port=443, bytes_out=2000, bytes_in=100, findings=aid))  # fmt: skip
    conns.append(Connection(t + 30, "har", "tls", "failed", app, "pinned.example.org", ip=IP_PINNED, port=443,
                            error="certificate unknown"))  # fmt: skip
    conns.append(Connection(t + 40, "har", "https", "intercepted", app, "cdn.runtime-config.net", ip=IP_CDN, port=443,
                            bytes_in=90000))  # fmt: skip
    if evil:
        conns.append(Connection(t + 50, "har", "http", "none", app, f"{EVIL}.evil.com", ip="1.1.1.1", port=80,
                                path="/" + EVIL, findings=(DataFinding(EVIL, EVIL, EVIL, "pattern", EVIL),)))  # fmt: skip
    return conns


def make_case(store: Store, app: str = APP, *, evil: bool = False, traffic: bool = True) -> ScanResult:
    """A scanned app plus a small capture: both-evidence, static-only, observed-only, pinned and
    personal-data hosts; ``evil`` adds hostile strings everywhere a string can go."""
    scan = make_scan(app, evil=evil)
    store.add_scan(scan, app=app)
    if traffic:
        store.add_connections(make_traffic(app, evil=evil))
    return scan
