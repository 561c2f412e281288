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
    report = evaluate(corpus, reqs, PiiDetector(PROFILE).scan, located=True)
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
        evaluate(corpus, reqs, PiiDetector(PROFILE).scan, located=True),
        evaluate(corpus, reqs, PiiDetector(None).scan),
    )
    assert table in DOC.read_text(encoding="utf-8"), "refresh docs/pii.md: python -m tests.helpers.pii_corpus"


def test_held_out_venue_coordinates_are_not_the_device_location(tmp_path: Path) -> None:
    """Issue 12 point 10: with a profile location, coordinates outside its tolerance (venues, search
    centres, due east or north of the device) are `coordinates`, not `location`; the device's own
    location beside them is still found. Held-out set (its own seed and places), read from a HAR."""
    from tests.helpers.pii_corpus import generate_held_out

    items = generate_held_out()
    assert sum(lab.venue for lab in items) >= 150 and sum("location" in lab.known for lab in items) >= 150
    reqs = _har(items, tmp_path)
    located = evaluate(items, reqs, PiiDetector(PROFILE).scan, located=True)
    assert located.personal.precision >= 0.95, located.false_positives[:10]
    assert located.personal.recall >= 0.98, located.misses[:10]
    assert located.per_type["coordinates"].recall >= 0.95, located.misses[:10]
    assert located.known_recall.recall >= 0.98
    # without a profile nothing tells a venue from the device: both are `location` (pattern)
    bare = evaluate(items, reqs, PiiDetector(None).scan)
    assert "coordinates" not in bare.per_type and bare.per_type["location"].recall >= 0.95


def test_coordinates_next_to_the_device_location() -> None:
    det = PiiDetector(PROFILE)
    home = PROFILE.location
    assert home is not None
    url = (f"https://rides.example.net/v1/quote?lat={home.lat + 0.001:.5f}&lng={home.lon - 0.001:.5f}"
           f"&dest_latitude={home.lat:.5f}&dest_longitude={home.lon + 0.2:.5f}&ll=48.858370,2.294481")  # fmt: skip
    found = {(f.data_type, f.location, f.confidence) for f in det.scan(HttpRequestData(url=url))}
    assert ("location", "query:lat", "known") in found  # the pickup: the device
    # the destination shares the device's latitude, but not its longitude: not the device
    assert {("coordinates", "query:dest_latitude", "pattern"), ("coordinates", "query:dest_longitude", "pattern"),
            ("coordinates", "query:ll", "pattern")} <= found  # fmt: skip
    assert not any(t == "location" and loc.startswith(("query:dest", "query:ll")) for t, loc, _ in found)
    alone = det.scan(
        HttpRequestData(url=f"https://maps.example.com/s?latitude={home.lat:.5f}&longitude=2.29448")
    )
    assert {f.data_type for f in alone} == {"coordinates"}  # a lone near latitude is not a location


def test_lat_pairs_with_its_own_longitude() -> None:
    """A device `lat`/`lng` and a venue `latitude`/`longitude` in one query: each pairs with its own."""
    home = PROFILE.location
    assert home is not None
    url = (f"https://maps.example.com/s?lat={home.lat:.5f}&lng={home.lon:.5f}"
           f"&latitude={home.lat + 0.001:.5f}&longitude={home.lon + 0.5:.5f}")  # fmt: skip
    found = {(f.location, f.data_type) for f in PiiDetector(PROFILE).scan(HttpRequestData(url=url))}
    assert {
        ("query:lat", "location"),
        ("query:latitude", "coordinates"),
        ("query:longitude", "coordinates"),
    } <= found
    assert ("query:latitude", "location") not in found
