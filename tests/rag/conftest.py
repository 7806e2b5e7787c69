"""A small bilingual lobby FAQ written to tmp_path, and an index built from it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.rag.ingest import ingest_paths
from kiosk.rag.sqlite_index import SqliteIndex

from .azure_emulator import AzureSearchEmulator

EN_FAQ = """# Visitor FAQ

## Where can I park?
Visitor parking is in the basement garage, level B2. The first two hours are free;
show your ticket at the reception desk to validate it.

## When is the building open?
The lobby is open from 7:00 to 22:00 on weekdays and from 9:00 to 17:00 on Saturdays.
It is closed on Sundays and public holidays.

## Is there wifi for guests?
Yes. Connect to the network "Lobby-Guest"; the password is printed on your visitor badge.
"""

JA_FAQ = """よくある質問

駐車場は地下二階にあります。最初の二時間は無料です。受付で駐車券を提示してください。

ロビーの営業時間は平日七時から二十二時まで、土曜日は九時から十七時までです。日曜日と祝日は休館です。

お手洗いは一階のエレベーターの右側にあります。車椅子用のお手洗いもございます。

忘れ物は受付でお預かりしています。三か月を過ぎると処分いたします。
"""

HTML_PAGE = """<!DOCTYPE html><html><head><title>Cafeteria</title><style>p{color:red}</style></head>
<body><nav>Home | Prev | Next</nav><div class="navheader">Chapter navigation</div>
<h1>Cafeteria</h1><h2>What are the cafeteria hours?</h2>
<p>The cafeteria on the
second floor serves lunch from 11:30 to 14:00.</p><script>var x = "should not be indexed";</script>
<h2>Can I pay by card?</h2><p>Cards and mobile payments are accepted; cash is not.</p>
<div class="navfooter">Footer links</div></body></html>
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "visitor-faq.md").write_text(EN_FAQ, encoding="utf-8")
    (root / "よくある質問.txt").write_text(JA_FAQ, encoding="utf-8")
    (root / "cafeteria.html").write_text(HTML_PAGE, encoding="utf-8")
    return root


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> SqliteIndex:
    ix = SqliteIndex(tmp_path / "state" / "index.sqlite")
    report = ingest_paths(ix, [corpus])
    assert not report.warnings
    yield ix
    ix.close()


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedding model's unpacked weights, once per test session, never in ~/.cache."""
    path = tmp_path_factory.mktemp("model-cache")
    old = os.environ.get("KIOSK_MODEL_CACHE")
    os.environ["KIOSK_MODEL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("KIOSK_MODEL_CACHE", None)
    else:
        os.environ["KIOSK_MODEL_CACHE"] = old


@pytest.fixture
def emu() -> Iterator[AzureSearchEmulator]:
    """A running Azure AI Search REST emulation (tests/rag/azure_emulator.py)."""
    with AzureSearchEmulator() as e:
        yield e
