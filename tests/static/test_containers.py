"""Archive assets (``audit.static.containers``), text around values in binary data
(``servers.in_message``) and the comment strippers of text assets."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from audit.static.containers import MAX_DEPTH, Unpacked, container_kind, unpack
from audit.static.endpoints import candidate_text
from audit.static.scanner import _html_code, _marshal_strings, _strip_c_comments, _strip_markup_comments
from audit.static.servers import cites, in_message


def _tar(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return raw.getvalue()


def test_kinds_by_first_bytes() -> None:
    assert container_kind(gzip.compress(b"x")) == "gzip"
    assert container_kind(_tar({"a": b"x"})) == "tar"
    assert container_kind(_zip({"a": b"x"})) == "zip"
    assert container_kind(b"<html>") is None


def test_gzip_tar_members_named_by_path_inside() -> None:
    data = gzip.compress(_tar({"app/a.html": b"<a href='https://a.example-x.org/'>", "b.txt": b"B"}))
    state = Unpacked()
    got = {m.name: m.data for m in unpack(data, "assets/private.tar", 1 << 20, state)}
    assert got == {
        "assets/private.tar!app/a.html": b"<a href='https://a.example-x.org/'>",
        "assets/private.tar!b.txt": b"B",
    }
    assert state.notes == [] and state.not_read == []


def test_zip_inside_tar_is_opened_but_an_apk_is_not() -> None:
    inner = _zip({"config.json": b"{}"})
    data = _tar({"bundle.zip": inner, "plugin.apk": inner})
    names = sorted(m.name for m in unpack(data, "assets/x.tar", 1 << 20))
    assert names == ["assets/x.tar!bundle.zip!config.json", "assets/x.tar!plugin.apk"]


def test_a_gzip_bomb_is_cut_off_at_the_budget_with_a_note() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 MiB of zeros in about 8 KiB
    state = Unpacked()
    assert list(unpack(bomb, "assets/bomb.gz", 1 << 20, state)) == []
    assert state.notes == ["assets/bomb.gz: more than 1 MiB decompressed inside (zip bomb?); not read"]


def test_zip_members_past_the_budget_are_not_read() -> None:
    data = _zip({f"f{i}.txt": b"x" * 1000 for i in range(10)})
    state = Unpacked()
    got = list(unpack(data, "assets/t.zip", 3500, state))
    assert len(got) == 3
    assert state.notes == ["assets/t.zip: more than 0 MiB decompressed inside (zip bomb?); the rest not read"]


def test_tar_members_are_not_counted_twice() -> None:
    """A tar's members are slices of the (already counted) gzip output: a bundle whose tar fills most
    of the budget is read whole."""
    data = gzip.compress(_tar({f"f{i}.txt": b"x" * 100_000 for i in range(8)}))
    state = Unpacked()
    assert len(list(unpack(data, "assets/b.tar.gz", 1 << 20, state))) == 8
    assert state.notes == []


def test_nesting_is_bounded() -> None:
    data = b"innermost"
    for _ in range(MAX_DEPTH + 2):
        data = gzip.compress(_tar({"x": data}))
    state = Unpacked()
    list(unpack(data, "assets/deep", 1 << 24, state))
    assert any("nested more than" in n for n in state.notes)


@pytest.mark.parametrize(
    "data",
    [gzip.compress(b"x")[:-6] + b"garbage", b"\x1f\x8b" + b"\xff" * 40, _tar({"a": b"x" * 600})[:700],
     b"PK\x03\x04" + b"\0" * 60],
    ids=["gzip-tail", "gzip-header", "tar-cut", "zip-garbage"],
)  # fmt: skip
def test_damaged_archives_give_notes_not_exceptions(data: bytes) -> None:
    state = Unpacked()
    list(unpack(data, "assets/d", 1 << 20, state))
    assert all(n.startswith("assets/d") for n in state.notes)


def test_virtualenv_in_an_archive_is_not_read() -> None:
    data = _tar({"venv/pyvenv.cfg": b"home=/usr", "venv/lib/pip.pyc": b"x", "app/main.py": b"y"})
    state = Unpacked()
    assert [m.name for m in unpack(data, "a.tar", 1 << 20, state)] == ["a.tar!app/main.py"]
    assert state.not_read and state.not_read[0].startswith("a.tar!venv/: a Python virtual environment")


@pytest.mark.parametrize(
    ("data", "url", "message"),
    [
        (b"\0see https://python.org/dev/peps/pep-0263/ for details\0", b"https://python.org/dev/peps/pep-0263/", True),
        (b"\0related to https://crbug.com/v8/8520\0" , b"https://crbug.com/v8/8520", False),  # two words only
        (b"\0simulate GC thread race related to https://crbug.com/v8/8520\0", b"https://crbug.com/v8/8520", True),
        (b" * @author Feross Aboukhadijeh <https://feross.org>\n", b"https://feross.org", True),
        (b"/*! ieee754. BSD-3-Clause License. F. A. <https://feross.org/os> */", b"https://feross.org/os", True),
        (b"\0https://api.example-x.cn/v1\0Send the events now please\0", b"https://api.example-x.cn/v1", False),
        (b'{"url":"https://api.example-x.cn/t","desc":"Send the usage events"}', b"https://api.example-x.cn/t", False),
        (b"Classic Rock Radio Berlinhttp://s.example-x.de/a", b"http://s.example-x.de/a", False),
    ],
)  # fmt: skip
def test_in_message(data: bytes, url: bytes, message: bool) -> None:
    assert in_message(data, data.index(url), len(url)) is message


def test_candidate_text_origins_map_back_to_the_bytes() -> None:
    data = b"\x00\x01see https://a.example-x.org/x for details\x00\xffhttps://b.example-x.org\x00"
    origins: list[tuple[int, int]] = []
    text = candidate_text(data, origins=origins)
    for t, raw in origins:
        run = text[t:].split("\n", 1)[0]
        assert data[raw : raw + len(run)].decode() == run
    assert len(origins) == 2


def test_marshal_constants_end_where_their_length_says() -> None:
    import marshal

    code = compile('A = "http://s.example-x.de:8000/stream"\nB = "classic"\n', "m.py", "exec")
    constants, rest = _marshal_strings(b"\0" * 16 + marshal.dumps(code))
    assert constants == ["http://s.example-x.de:8000/stream"] and rest == b""


def test_c_comments_are_stripped_but_urls_and_mime_types_kept() -> None:
    js = (
        b"// see https://a.example-x.org/\n"
        b"var u = 'https://api.example-x.org/v1'; // https://b.example-x.org/\n"
        b"/* block\n * https://c.example-x.org/\n */ var t = '*/*', p = \"//cdn.example-x.org/x.js\";\n"
    )
    out = _strip_c_comments(js)
    assert b"a.example-x.org" not in out and b"b.example-x.org" not in out and b"c.example-x.org" not in out
    assert b"https://api.example-x.org/v1" in out and b"'*/*'" in out and b"//cdn.example-x.org/x.js" in out


def test_comment_strippers_on_hostile_input() -> None:
    """An unclosed comment ends the file; a run of comment starts is one pass (linear: each search goes
    on after the last comment's end; benchmarks/fuzz_static.py runs the big inputs)."""
    assert _strip_c_comments(b"x /* " + b"y" * 100_000) == b"x \n"
    assert _strip_c_comments(b" /*" * 10_000) == b" \n"
    assert _strip_markup_comments(b"<!--" * 10_000) == b" "


def test_markup_comments() -> None:
    assert _strip_markup_comments(b"a<!-- https://x.example-x.org -->b<!-- open") == b"a b "


def test_member_names_that_are_not_utf8_stay_encodable() -> None:
    """A tar name of undecodable bytes must not become lone surrogates: every output (JSON, the case
    file, the HTML report) is UTF-8."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("bad\udcffname.txt")  # written back as the byte 0xFF
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (member,) = unpack(raw.getvalue(), "assets/t.tar", 1 << 20)
    assert member.name == "assets/t.tar!bad\ufffdname.txt"
    member.name.encode("utf-8")


def test_html_keeps_tags_scripts_and_styles_not_text() -> None:
    page = (
        b"<p>see http://text.example-x.org/</p><a href='https://link.example-x.org/'>x</a>"
        b"<SCRIPT>if (a < b) u = 'https://api.example-x.org/';</script >"
        b"<style>p{background:url(https://img.example-x.org/a.png)}</style><pre>https://pre.example-x.org/</pre>"
    )
    out = _html_code(page)
    assert b"text.example-x.org" not in out and b"pre.example-x.org" not in out
    for kept in (
        b"https://link.example-x.org/",
        b"'https://api.example-x.org/'",
        b"https://img.example-x.org/a.png",
    ):
        assert kept in out
    assert _html_code(b"<script src='https://s.example-x.org/a.js'/><p>https://t.example-x.org</p>") == (
        b"<script src='https://s.example-x.org/a.js'/>\n<p>\n</p>"
    )


def test_html_code_on_hostile_input() -> None:
    """A ``<`` with no ``>`` or a script with no end ends the page: one pass, linear."""
    assert _html_code(b"x <" + b"y" * 100_000) == b"<" + b"y" * 100_000
    assert _html_code(b"<script>" * 10_000).startswith(b"<script>\n<script>")
    assert _html_code(b"<" * 10_000) == b"<" * 10_000


@pytest.mark.parametrize(
    ("before", "cited"),
    [("See ", True), ("  see also: ", True), ("Please visit <", True), ("cf. (", True), ("url=", False),
     ("The main repository is ", False), ("oversee ", False)],
)  # fmt: skip
def test_cites(before: str, cited: bool) -> None:
    assert cites(before) is cited
