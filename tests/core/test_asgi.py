"""marketplace/asgi.py: what the ASGI entry point sets up for the process
(bench/bench_chat.py measured each; docs/PERFORMANCE.md, "Messaging")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, sys
import marketplace.asgi
print(json.dumps({
    "threshold": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
    "switch": sys.getswitchinterval(),
    "app": type(marketplace.asgi.application).__name__,
}))
"""


def _probe(**env: str) -> dict:
    # A fresh interpreter: the module changes process-wide state (the
    # collector, the GIL interval) that must not leak into this test run.
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ASGI_")}
    environ.update(DJANGO_SETTINGS_MODULE="marketplace.settings_test", **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_asgi_module_sets_large_gc_thresholds_freezes_startup_objects_and_a_short_gil_interval():
    state = _probe()
    # Young collections every 50,000 allocations instead of 700: with thousands of
    # sockets open the default thresholds kept the server walking its heap.
    assert state["threshold"] == [50000, 20, 100]
    # Django, the URLconf and the catalogs, loaded at import, are out of the
    # collector's generations.
    assert state["frozen"] > 10_000
    assert state["switch"] == 0.001
    assert state["app"] == "ProtocolTypeRouter"


def test_gc_thresholds_can_be_set_from_the_environment():
    assert _probe(ASGI_GC_THRESHOLD="20000,10,10")["threshold"] == [20000, 10, 10]
