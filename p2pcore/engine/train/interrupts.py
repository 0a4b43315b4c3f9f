"""Ctrl-C and SIGTERM as requests the training loop honours between steps."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C and SIGTERM into a request the loop honours between steps, so the checkpoint it
    then writes is a consistent one. A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested: list[int] = []

    def request(signum: int, frame: Any) -> None:
        requested.append(signum)
        signal.signal(signal.SIGINT, previous[signal.SIGINT])

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
