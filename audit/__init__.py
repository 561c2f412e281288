"""dataflow-audit: which servers does an Android app's data reach?

Static APK scan + mitmproxy capture + traffic import, joined in one graph and report.
"""

from __future__ import annotations

__version__ = "0.1.0"

from audit.errors import AuditError

__all__ = ["AuditError", "__version__"]
