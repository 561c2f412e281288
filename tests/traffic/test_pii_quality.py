"""Quality floor of the PII detectors on the synthetic labelled set (tests/helpers/pii_corpus.py),
read back from a HAR file and from a mitmproxy flow file. The table in docs/pii.md comes from the
same helper (``python -m tests.helpers.pii_corpus``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from audit.models import HttpRequestData
from audit.traffic.pii import PiiDetector
from tests.helpers.pii_corpus import (
    PLACES,
    PROFILE,
    Labelled,
    evaluate,
    generate,
    read_flows,
    read_har,
    write_flows,
    write_har,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "pii.md"


@pytest.fixture(scope="module")
def corpus() -> list[Labelled]:
    return generate()


def _har(items: list[Labelled], tmp: Path) -> list[HttpRequestData]:
    write_har(items, tmp / "corpus.har")
    return read_har(tmp / "corpus.har")


def _flows(items: list[Labelled], tmp: Path) -> list[HttpRequestData]:
    write_flows(items, tmp / "corpus.flows")
    return read_flows(tmp / "corpus.flows")


def test_corpus_is_varied_and_deterministic(corpus: list[Labelled]) -> None:
    assert len(corpus) >= 500
    assert {lab.desc[0] for lab in corpus} == set(PLACES)
    types = {t for lab in corpus for t in lab.labels}
    assert {"imei", "aaid", "oaid", "android_id", "wifi_mac", "bt_mac", "email", "phone", "location"} <= types
    assert sum(1 for lab in corpus if not lab.labels) >= len(corpus) // 6  # negatives only
    assert [lab.req for lab in generate()[:50]] == [lab.req for lab in corpus[:50]]


@pytest.mark.parametrize("reader", [_har, _flows], ids=["har", "mitmproxy-flows"])
def test_quality_floor(
    corpus: list[Labelled], tmp_path: Path, reader: Callable[[list[Labelled], Path], list[HttpRequestData]]
) -> None:
    reqs = reader(corpus, tmp_path)
    assert len(reqs) == len(corpus)
    report = evaluate(corpus, reqs, PiiDetector(PROFILE).scan)
    assert report.known_recall.recall >= 0.98, report.misses[:10]
    assert report.overall.precision >= 0.95, report.false_positives[:10]
    for data_type, score in report.per_type.items():
        assert score.recall >= 0.9, (data_type, report.misses[:10])
    bare = evaluate(corpus, reqs, PiiDetector(None).scan)
    assert bare.overall.precision >= 0.95, bare.false_positives[:10]
    assert bare.pattern_recall.recall >= 0.95, bare.misses[:10]


def test_round_trips_keep_the_requests(corpus: list[Labelled], tmp_path: Path) -> None:
    det = PiiDetector(PROFILE)
    direct = [det.scan(lab.req) for lab in corpus[:120]]
    for reader in (_har, _flows):
        reqs = reader(corpus[:120], tmp_path)
        assert [r.body for r in reqs] == [lab.req.body for lab in corpus[:120]]
        assert [det.scan(r) for r in reqs] == direct


def test_doc_table_matches_the_helper(corpus: list[Labelled]) -> None:
    from tests.helpers.pii_corpus import markdown_table

    reqs = [lab.req for lab in corpus]
    table = markdown_table(
        evaluate(corpus, reqs, PiiDetector(PROFILE).scan), evaluate(corpus, reqs, PiiDetector(None).scan)
    )
    assert table in DOC.read_text(encoding="utf-8"), "refresh docs/pii.md: python -m tests.helpers.pii_corpus"
