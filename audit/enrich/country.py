"""Country codes: ISO 3166-1 alpha-2, from the ISO table the ``pycountry`` package ships (offline).

Every option that takes a country (``audit check --deny-country``, ``audit signatures list
--country``) goes through :func:`country_code`: a code is checked against ISO 3166-1, a name is
accepted only when it names one country (``China`` → CN, ``South Korea`` → KR; ``Korea`` and
``Congo`` name two and are refused), and the caller is told how a name was read. ``XX``, ``ZZ`` and
other user-assigned codes are not countries (a gate must not pass because a code matched nothing).
"""

from __future__ import annotations

import difflib
import functools
import unicodedata

from audit.errors import OptionError

#: Names people use that the ISO table does not list (short forms of the official ones).
_OUR_NAMES = {
    "uk": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "usa": "US", "america": "US",
    "united states of america": "US", "russia": "RU", "turkey": "TR", "macau": "MO", "czech republic": "CZ",
    "holland": "NL", "ivory coast": "CI", "burma": "MM", "swaziland": "SZ", "cape verde": "CV",
    "east timor": "TL", "vatican": "VA", "brunei": "BN",
}  # fmt: skip


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name (``Türkiye`` → ``turkiye``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


@functools.cache
def _table() -> tuple[dict[str, str], dict[str, set[str]], dict[str, str]]:
    """ISO alpha-2 → name; folded name → codes; alpha-3 → alpha-2."""
    import pycountry

    names: dict[str, str] = {}
    by_name: dict[str, set[str]] = {}
    alpha3: dict[str, str] = {}
    for c in pycountry.countries:
        code = str(c.alpha_2)
        names[code] = str(getattr(c, "common_name", None) or c.name)
        alpha3[str(c.alpha_3)] = code
        for n in {c.name, getattr(c, "common_name", None), getattr(c, "official_name", None)} - {None}:
            by_name.setdefault(_fold(str(n)), set()).add(code)
            head = str(n).split(",")[0]  # "Korea, Republic of" is also "Korea" (and so ambiguous)
            by_name.setdefault(_fold(head), set()).add(code)
    for n, code in _OUR_NAMES.items():
        by_name.setdefault(n, set()).add(code)
    return names, by_name, alpha3


def country_name(code: str) -> str | None:
    """The common English name of an ISO 3166-1 alpha-2 code, None if it is not one."""
    return _table()[0].get(code.upper())


def is_country(code: str) -> bool:
    return country_name(code) is not None if len(code) == 2 else False


def country_code(value: str, option: str = "--country") -> tuple[str, str | None]:
    """``(code, note)``: the ISO 3166-1 alpha-2 code ``value`` stands for, and when it was given by
    name, a note saying how it was read (``'China' read as CN``). OptionError otherwise, naming the
    option, with close matches."""
    names, by_name, alpha3 = _table()
    text = value.strip()
    up = text.upper()
    if len(up) == 2 and up.isascii() and up.isalpha():
        if up in names:
            return up, None
        if _fold(text) in by_name and len(by_name[_fold(text)]) == 1:
            code = next(iter(by_name[_fold(text)]))
            return code, f"{option} {value!r} read as {code} ({names[code]}): {up} is not an ISO 3166-1 code"
        raise OptionError(
            f"{option} {value!r}: not an ISO 3166-1 alpha-2 country code (two-letter, such as CN)"
        )
    codes = sorted(by_name.get(_fold(text), ()))
    if len(codes) == 1:
        return codes[0], f"{option} {value!r} read as {codes[0]} ({names[codes[0]]})"
    if len(codes) > 1:
        choices = ", ".join(f"{c} ({names[c]})" for c in codes)
        raise OptionError(
            f"{option} {value!r}: names more than one country ({choices}); give the two-letter code"
        )
    hint = ""
    if up in alpha3:
        hint = f"; did you mean {alpha3[up]} ({names[alpha3[up]]})?"
    else:
        close = difflib.get_close_matches(_fold(text), list(by_name), n=3, cutoff=0.75)
        found = sorted({c for n in close for c in by_name[n]})
        if found:
            hint = "; did you mean " + " or ".join(f"{c} ({names[c]})" for c in found) + "?"
    raise OptionError(
        f"{option} {value!r}: expected a two-letter ISO 3166-1 country code such as CN, or a country name{hint}"
    )
