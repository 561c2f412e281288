"""The ``__main__`` block of compiled Python (audit/static/pycode.py), read by our own bounded reader."""

from __future__ import annotations

import importlib.util
import marshal
import random

import pytest

from audit.static.pycode import main_block_strings

SOURCE = '''
"""Docs at http://doc.example-x.org/"""
API = "https://api.example-x.org/v1"
def fetch(url="https://default.example-x.org/"):
    return "https://in-function.example-x.org/"
class Client:
    base = "https://class.example-x.org/"
if __name__ == "__main__":
    import sys
    def demo():
        return "https://in-demo.example-x.org/"
    fetch(API)
    fetch("https://api.example-x.org/v1")
    print("https://main-only.example-x.org/", ("https://tuple.example-x.org/", 1))
    for i in range(3):
        print(i)
AFTER = "https://after.example-x.org/"
'''


def _pyc(source: str) -> bytes:
    return importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(compile(source, "m.py", "exec"))


def test_strings_only_the_main_block_loads() -> None:
    assert main_block_strings(_pyc(SOURCE)) == {
        "https://in-demo.example-x.org/",
        "https://main-only.example-x.org/",
        "https://tuple.example-x.org/",
    }


@pytest.mark.parametrize(
    "source",
    [
        'A = "https://a.example-x.org/"\n',  # no block
        'if "__main__" == __name__:\n    print("https://a.example-x.org/")\n',  # another shape: not claimed
        'import sys\nif sys.modules["__main__"]:\n    print("https://a.example-x.org/")\n',
        'if __name__ != "__main__":\n    print("https://a.example-x.org/")\n',
    ],
)
def test_no_claim_without_the_exact_block(source: str) -> None:
    assert main_block_strings(_pyc(source)) == frozenset()


def test_other_versions_and_damaged_data_give_nothing() -> None:
    data = _pyc(SOURCE)
    assert main_block_strings(b"\x0d\x0e\r\n" + data[4:]) == frozenset()  # Python 3.13's magic range
    assert main_block_strings(data[:-40]) == frozenset()  # truncated
    rng = random.Random(7)
    for _ in range(300):  # bit flips: any result, never an exception
        d = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(16, len(d))] ^= 1 << rng.randrange(8)
        assert isinstance(main_block_strings(bytes(d)), frozenset)


def test_hostile_nesting_and_sizes_are_bounded() -> None:
    head = _pyc("X = 1\n")[:16]
    deep = head + b"(\x01\x00\x00\x00" * 100_000 + b"N" + b"__main__"
    assert main_block_strings(deep) == frozenset()
    huge = head + b"(\xff\xff\xff\x7f" + b"__main__"  # a tuple claiming 2**31 items
    assert main_block_strings(huge) == frozenset()
