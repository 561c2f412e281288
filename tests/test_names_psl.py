"""The Public Suffix List's parsed state is cached (audit.names.public_suffix_list): the cached
object must answer exactly as the library's own parse, and a damaged or stale cache must be rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from publicsuffixlist import PublicSuffixList

from audit import names

HOSTS = [
    "www.google.co.uk",
    "a.b.github.io",
    "xn--fiqs8s.foo.xn--fiqs8s",
    "x.unknown-tld-zz",
    "co.uk",
    "b.kawasaki.jp",
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    names.public_suffix_list.cache_clear()
    yield tmp_path / "home" / "cache" / "psl.json"
    names.public_suffix_list.cache_clear()


def answers(psl: PublicSuffixList) -> list[object]:
    return [(psl.privatesuffix(h), psl.publicsuffix(h)) for h in HOSTS]


def test_cached_list_answers_as_the_librarys_own(cache: Path) -> None:
    reference = PublicSuffixList(accept_unknown=False)
    first = names.public_suffix_list()
    assert cache.is_file()
    names.public_suffix_list.cache_clear()
    second = names.public_suffix_list()  # read back from the cache file
    assert vars(second) == vars(reference)
    assert answers(first) == answers(second) == answers(reference)
    assert answers(reference)[0] == ("google.co.uk", "co.uk")


@pytest.mark.parametrize(
    "damage",
    [
        "not json",
        json.dumps({"key": "another library version", "state": {}}),
        json.dumps({"state": {"_publicsuffix": "co.uk"}}),
        "KEY",  # right key, wrong state kinds
    ],
)
def test_damaged_or_stale_cache_is_rebuilt(cache: Path, damage: str) -> None:
    names.public_suffix_list()
    if damage == "KEY":
        key = json.loads(cache.read_text())["key"]
        damage = json.dumps(
            {"key": key, "state": {"_publicsuffix": [1, 2], "_maxlabel": 1, "accept_unknown": False}}
        )
    cache.write_text(damage)
    names.public_suffix_list.cache_clear()
    psl = names.public_suffix_list()
    assert vars(psl) == vars(PublicSuffixList(accept_unknown=False))
    assert json.loads(cache.read_text())["key"] != "another library version"


def test_unwritable_cache_folder_still_gives_the_list(cache: Path) -> None:
    cache.parent.parent.mkdir(parents=True)
    cache.parent.write_text("a file where the cache folder should be")
    psl = names.public_suffix_list()
    assert psl.privatesuffix("www.example.com") == "example.com"
