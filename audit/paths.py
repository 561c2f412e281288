"""Where dataflow-audit keeps the user's own data (signature overlay, imported ASN table)."""

from __future__ import annotations

import os
from pathlib import Path


def audit_home() -> Path:
    """``$AUDIT_HOME`` if set, else ``$XDG_DATA_HOME/dataflow-audit`` (``~/.local/share/dataflow-audit``)."""
    home = os.environ.get("AUDIT_HOME")
    if home:
        return Path(home)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "dataflow-audit"
