"""The incremental JSON reader behind HAR import (issue 15): the same values as json.load at any
buffer size, json.load's error wording, and memory that does not grow with the file."""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from audit.store import Store
from audit.traffic.importers import detection, import_file, jsonstream
from audit.traffic.importers.jsonstream import JsonStream, JsonStreamError
from audit.traffic.pii import PiiDetector
from tests.helpers.traffic import entry, write_har


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**20), 10**20)
    if kind == 2:
        return rng.choice([0.5, -1e300, 1e-7, 3.0])
    if kind in (3, 4):
        return "".join(rng.choice('ab"\\/\n\u00e9\u202e\ud800 {}[],:') for _ in range(rng.randint(0, 12)))
    if kind in (5, 6):
        return {str(random_value(rng, 5)): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def stream(doc_text: str, path: tuple[str, ...] = ("log", "entries")) -> list[Any]:
    return list(JsonStream(io.BytesIO(doc_text.encode("utf-8", "surrogatepass"))).array_at(path))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("seed", range(6))
def test_same_values_as_json_load(monkeypatch: pytest.MonkeyPatch, chunk: int, seed: int) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    rng = random.Random(seed)
    entries = [random_value(rng) for _ in range(30)]
    doc = {
        "other": random_value(rng),
        "log": {"version": "1.2", "pages": [random_value(rng)], "entries": entries, "z": 12},
    }
    text = json.dumps(doc, indent=rng.choice([None, 1]))
    assert stream(text) == json.loads(text)["log"]["entries"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"log": {"entries": [', "invalid JSON at line 1 column 22: Expecting value"),
        ('{"log": {"entries": [1 2]}}', "Expecting ',' delimiter"),
        ('{"log": {"entries": []}} x', "Extra data"),
        ('{"log": {"entries": [{"a": "unterminated]}}', "Unterminated string"),
        ('\n\n{"log": {"entries": [1, }', "invalid JSON at line 3 column 25"),
    ],
)
def test_json_errors(text: str, message: str) -> None:
    with pytest.raises(JsonStreamError) as e:
        stream(text)
    assert message in str(e.value) and not e.value.shape, str(e.value)


@pytest.mark.parametrize(
    "text", ['{"log": {"version": 1}}', '{"log": []}', "[1, 2]", '{"log": {"entries": {}}}', '"x"']
)
def test_wrong_shape(text: str) -> None:
    with pytest.raises(JsonStreamError) as e:
        stream(text)
    assert e.value.shape


def test_non_utf8_byte_offset_is_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 16)
    data = b'{"log": {"entries": ["' + b"a" * 100 + b'\xff"]}}'
    with pytest.raises(UnicodeDecodeError) as e:
        list(JsonStream(io.BytesIO(data)).array_at(("log", "entries")))
    assert e.value.start == data.index(b"\xff")


def _peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            n = sum(1 for _ in JsonStream(f).array_at(("log", "entries")))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = write_har(
        tmp_path / "small.har", [entry(f"https://h{i}.example.net/x?a={i}") for i in range(12000)]
    )
    big = write_har(tmp_path / "big.har", [entry(f"https://h{i}.example.net/x?a={i}") for i in range(36000)])
    (n_small, peak_small), (n_big, peak_big) = _peak(small), _peak(big)
    assert (n_small, n_big) == (12000, 36000)
    assert peak_big < 1.25 * peak_small, (peak_small, peak_big)  # a few buffers, whatever the size
    assert peak_big < big.stat().st_size // 2  # json.load holds several times the file


def test_big_single_entry_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 1024)
    path = write_har(tmp_path / "one.har", [entry(), entry(serverIPAddress="7" * 200_000), entry()])
    with path.open("rb") as f:
        got = list(JsonStream(f).array_at(("log", "entries")))
    assert [len(e["serverIPAddress"]) for e in got] == [11, 200_000, 11]


# -- data detection in a worker process ---------------------------------------------------------


def _findings(store: Store) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.path or "", tuple(sorted(f.data_type for f in c.findings))) for _, c in store.connections()]


def test_parallel_detection_finds_the_same_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    entries = [entry(f"https://t.example/{i}?adid={aaid if i % 3 == 0 else 'none'}") for i in range(2500)]
    path = write_har(tmp_path / "d.har", entries)
    inline, parallel = Store(), Store()
    import_file(path, inline, detector=PiiDetector(None))
    monkeypatch.setattr(detection, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(detection, "BATCH", 100)
    monkeypatch.setattr("audit.traffic.importers.PARALLEL_MIN_BYTES", 0)
    import_file(path, parallel, detector=PiiDetector(None))
    assert _findings(parallel) == _findings(inline)
    assert sum(1 for _, types in _findings(parallel) if "aaid" in types) == 834


def test_a_failing_worker_falls_back_to_detection_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_har(tmp_path / "d.har", [entry(f"https://t.example/{i}") for i in range(300)])

    def broken(requests: list[Any]) -> list[Any]:
        raise MemoryError("worker out of memory")

    monkeypatch.setattr(detection, "_scan_batch", broken)
    monkeypatch.setattr("audit.traffic.importers.PARALLEL_MIN_BYTES", 0)
    store = Store()
    s = import_file(path, store, detector=PiiDetector(None))
    assert s.connections == 300 and store.connection_count() == 300


def test_big_bodies_make_short_batches_with_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a decrypted capture's requests carry bodies of tens of KB: batches are cut at BATCH_BYTES of
    # bodies, not only at BATCH requests, and the findings are those of detection in this process
    aaid = "38400000-8cf0-11bd-b23e-10b96e40000d"

    def big(i: int) -> dict[str, Any]:
        text = json.dumps({"i": i, "adid": aaid if i % 2 else "none", "pad": "x" * 50_000})
        return entry(f"https://t.example/{i}", request={
            "method": "POST", "url": f"https://t.example/{i}", "httpVersion": "HTTP/1.1", "headers": [],
            "queryString": [], "postData": {"mimeType": "application/json", "text": text}, "headersSize": -1,
            "bodySize": len(text)})  # fmt: skip

    path = write_har(tmp_path / "big.har", [big(i) for i in range(120)])
    inline, parallel = Store(), Store()
    import_file(path, inline, detector=PiiDetector(None))
    sizes: list[int] = []
    requests = detection._requests

    def counted(batch: list[Any]) -> Any:
        sizes.append(len(batch))
        return requests(batch)

    monkeypatch.setattr(detection, "_requests", counted)
    monkeypatch.setattr(detection, "BATCH_BYTES", 1 << 20)
    monkeypatch.setattr("audit.traffic.importers.PARALLEL_MIN_BYTES", 0)
    import_file(path, parallel, detector=PiiDetector(None))
    assert _findings(parallel) == _findings(inline)
    assert sum(1 for _, types in _findings(parallel) if "aaid" in types) == 60
    assert sum(sizes) == 120 and len(sizes) >= 5 and max(sizes[:-1]) == 21  # 21 x 50 KB > 1 MiB
