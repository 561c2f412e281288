"""The AuditError tree. Library code raises these (always ``raise … from e``); only the CLI and the
mitmproxy addon translate them into user-facing messages."""

from __future__ import annotations


class AuditError(Exception):
    """Base class for every error this package raises on purpose."""


class InputError(AuditError):
    """An input file is unreadable, malformed, hostile or of an unsupported kind.

    The message names the file and the problem in one line."""


class ArchiveError(InputError):
    """A zip/APK/bundle is not a zip, truncated, a zip bomb, or has unsafe entries."""


class DexError(InputError):
    """A DEX file has a corrupt header or tables."""


class ImportFormatError(InputError):
    """A traffic file (flows, HAR, pcap) cannot be read."""


class StoreError(AuditError):
    """The SQLite case file cannot be opened, migrated or written."""


class ConfigError(AuditError):
    """A configuration file (device profile, .mmdb path, signature overlay) is invalid."""


def one_line(text: str, limit: int = 160) -> str:
    """An exception's text as part of a one-line message: control, bidi and other unprintable
    characters escaped, cut at ``limit``. Parsers quote the offending value, and a hostile file
    makes it as long and as terminal-unfriendly (``\\x1b[2J``, U+202E) as it likes."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OptionError(ConfigError):
    """An option's value names nothing that exists: an unknown data type, country, company, app
    label or SDK. The message names the option and the value, and the close matches or the known
    values. The CLI shows it as a usage error (exit status 2)."""


class OutputError(AuditError):
    """An output file cannot be written. The message names the file the user gave (or its missing
    folder), never a temporary file."""
