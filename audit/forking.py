"""When this process may fork a helper (the scanner's second reader, the HAR reader child).

A fork copies only the calling thread: a lock another thread holds stays locked in the child, so a
process with other threads (a mitmproxy addon, a test runner's helpers) never forks. ``AUDIT_NO_FORK``
turns the helpers off, as batch workers do (they are forked processes themselves).
"""

from __future__ import annotations

import os
import threading

__all__ = ["fork_is_safe"]


def fork_is_safe() -> bool:
    """``fork`` exists, no other thread runs, and ``AUDIT_NO_FORK`` is not set."""
    return hasattr(os, "fork") and threading.active_count() == 1 and not os.environ.get("AUDIT_NO_FORK")
