"""The vector scan keeps OpenBLAS to one thread without threadpoolctl in the daemon: its
library survey and import kept ~0.4 MB after the first search (idle5, ad hoc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ONE_THREAD = """
import sys
from kiosk.rag.embedding import one_blas_thread
one_blas_thread()
print("threadpoolctl" in sys.modules)
from threadpoolctl import threadpool_info
print(sorted({i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"}))
"""


def test_openblas_runs_one_thread_and_threadpoolctl_stays_out() -> None:
    pytest.importorskip("threadpoolctl")  # only to read the count back
    out = subprocess.run(
        [sys.executable, "-c", ONE_THREAD],
        capture_output=True, text=True, timeout=60, check=True,
        env={"OPENBLAS_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert out == ["False", "[1]"]


def test_without_openblas_threadpoolctl_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.rag.embedding as embedding

    calls: list[tuple[int, str]] = []
    fake = type(sys)("threadpoolctl")
    limits = lambda n, user_api: calls.append((n, user_api))  # noqa: E731
    setattr(fake, "threadpool_limits", limits)  # noqa: B010
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    monkeypatch.setattr(embedding, "OPENBLAS_FILE_PREFIXES", ("no-such-library",))
    embedding.one_blas_thread()
    assert calls == [(1, "blas")]
