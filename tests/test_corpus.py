"""``audit corpus``: counts per SDK / company / country / category with code evidence only, SDKs per
app, domains, signers and re-signed copies, failures; JSON/CSV/table and the HTML report (also in
real headless chromium)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import ExitStatus, main
from audit.corpus import collect_corpus, sdk_in_code
from audit.models import Sdk
from audit.static.scanner import scan_path
from audit.store import Store
from tests.helpers.batch import batch_case
from tests.helpers.browser import console_messages, needs_chromium, run_chromium

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for sub in ("apks", "hostile", "signed"):
        shutil.copytree(FIXTURES / sub, root / sub)
    return batch_case(root, root / "case.sqlite")


@pytest.fixture(scope="module")
def corpus(case: Path) -> dict:
    with Store(case) as store:
        return collect_corpus(store).to_dict()


def test_sdk_in_code() -> None:
    """The presence of an SDK decides (issue 11): its code, not a host of its vendor."""
    assert sdk_in_code(
        Sdk("x", "X", "Co", "US", "ads", ("code: 3 classes under x (classes.dex)",), 3, presence="code")
    )
    for presence in ("host-in-code", "host-string"):
        assert not sdk_in_code(
            Sdk("x", "X", "Co", "US", "ads", ("host: a.x.com (classes.dex)",), presence=presence)
        )


def test_counts_rest_on_code_evidence(corpus: dict) -> None:
    results = [scan_path(p) for p in sorted(FIXTURES.glob("apks/*")) if not p.name.endswith(".json")]
    assert corpus["apps"] == 19
    by_id = {s["id"]: s for s in corpus["sdks"]}
    # obfuscated.apk: AppsFlyer only by its host names: never "embedded", shown as network_only
    assert (
        by_id["appsflyer"]["apps"] == 0 and by_id["appsflyer"]["network_only"] == 2
    )  # obfuscated + its v2 copy
    assert by_id["jpush"]["apps"] == 2  # multidex.apk and its v1-signed copy
    for s in corpus["sdks"]:
        assert s["apps"] == len(s["app_sha256"]) and set(s) >= {
            "id",
            "name",
            "owner",
            "owner_country",
            "category",
            "apps",
        }
    # per app, the SDKs are exactly those with code evidence
    mine = {p["sha256"]: p["sdks"] for p in corpus["packages"]}
    for r in results:
        assert mine[r.app.sha256] == sorted(s.id for s in r.sdks if sdk_in_code(s))


def test_countries_companies_categories(corpus: dict) -> None:
    apps_by_sdk = {s["id"]: set(s["app_sha256"]) for s in corpus["sdks"]}
    cn = set().union(*(apps_by_sdk[s["id"]] for s in corpus["sdks"] if s["owner_country"] == "CN"))
    assert corpus["countries"]["CN"] == len(cn)
    assert list(corpus["countries"]) == sorted(corpus["countries"], key=lambda k: -corpus["countries"][k])
    tencent = next(c for c in corpus["companies"] if c["company"] == "Tencent")
    assert tencent["country"] == "CN" and set(tencent["sdks"]) == {"tencent_bugly", "wechat_opensdk"}
    assert tencent["apps"] == len(apps_by_sdk["tencent_bugly"] | apps_by_sdk["wechat_opensdk"])
    push = next(c for c in corpus["categories"] if c["category"] == "push")
    assert push["sdks"] == ["jpush"]


def test_sdks_per_app_distribution(corpus: dict) -> None:
    d = corpus["sdks_per_app"]
    counts = [len(p["sdks"]) for p in corpus["packages"]]
    assert sum(d["histogram"].values()) == corpus["apps"]
    assert d["histogram"][str(max(counts))] == counts.count(max(counts)) and d["max"] == max(counts)


def test_domains_with_owners(corpus: dict) -> None:
    top = {d["domain"]: d for d in corpus["domains"]}
    assert top["qq.com"]["owner"] == "Tencent" and top["qq.com"]["owner_country"] == "CN"
    assert all(d["apps"] >= 1 for d in corpus["domains"]) and corpus["domains_total"] >= len(
        corpus["domains"]
    )
    assert "example.com" not in top  # placeholders are left out


def test_signers_and_resigned_copies(corpus: dict) -> None:
    subjects = {s["subject"]: s for s in corpus["signers"]}
    dev = subjects["CN=Example Messenger Developer,O=Example Messenger Ltd,C=DE"]
    store = subjects["CN=Third-Party Store Re-signer,O=Example App Store,C=CN"]
    assert dev["apps"] == 3 and dev["packages"] == ["com.example.messenger", "com.example.multidex"]
    assert store["apps"] == 2 and store["schemes"] == ["v1", "v2"]
    [resigned] = corpus["resigned"]
    assert resigned["package"] == "com.example.messenger"
    signer_sets = {tuple(c["signers"]) for c in resigned["copies"]}
    assert (dev["sha256"],) in signer_sets and (store["sha256"],) in signer_sets
    assert corpus["unsigned"] == 19 - 5 - 1  # five signed copies; a bare DEX is not counted as unsigned


def test_failures_listed_with_reasons(corpus: dict) -> None:
    reasons = {Path(f["paths"][0]).name: f["reason"] for f in corpus["failed"]}
    assert set(reasons) == {
        "empty.apk",
        "not_a_zip.apk",
        "corrupt.dex",
        "zipbomb.apk",
        "zipbomb_total.apk",
        "nested.apks",
    }
    assert all(r for r in reasons.values())


def test_json_keys_are_documented(corpus: dict) -> None:
    doc = (FIXTURES.parents[1] / "docs" / "corpus.md").read_text(encoding="utf-8")
    for key in corpus:
        assert f"`{key}`" in doc, key
    for key in corpus["sdks"][0]:
        assert f"`{key}`" in doc, key


def test_cli_formats_and_html(case: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["corpus", "--db", str(case), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["apps"] == 19
    r = CliRunner().invoke(main, ["corpus", "--db", str(case), "--format", "csv"])
    assert r.stdout.splitlines()[0] == "id,name,owner,owner_country,category,apps,share,network_only"
    r = CliRunner().invoke(main, ["corpus", "--db", str(case), "--format", "table"])
    assert r.stdout.startswith("19 apps, 6 failed, 0 not Android packages; SDKs per app:")
    assert "re-signed: com.example.messenger:" in r.stdout
    out = tmp_path / "corpus.html"
    r = CliRunner().invoke(main, ["corpus", "--db", str(case), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{out}: 19 apps,")
    html = out.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html  # hostile_strings.apk's endpoints and names are escaped
    assert html.count("data:image/svg+xml;base64,") == 3
    r = CliRunner().invoke(main, ["corpus", "--db", str(tmp_path / "missing.sqlite")])
    assert r.exit_code == ExitStatus.ERROR and "no such case file" in r.output


@pytest.mark.slow
@needs_chromium
def test_corpus_report_in_chromium(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus.html"
    assert CliRunner().invoke(main, ["corpus", "--db", str(case), "-o", str(out)]).exit_code == 0
    dom, err = run_chromium(tmp_path, out.as_uri(), "--dump-dom", "--virtual-time-budget=2000")
    assert console_messages(err) == []  # no script error, no blocked request
    assert 'class="js"' in dom.split(">", 2)[1] or '<html lang="en" class="js">' in dom
    assert dom.count("<script") == 1
