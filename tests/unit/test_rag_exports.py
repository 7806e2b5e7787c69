"""``kiosk.rag``'s names load on first use (PEP 562): its literal ``__all__`` and its table agree."""

import importlib

import kiosk.rag


def test_all_lists_exactly_the_lazily_loaded_names() -> None:
    assert sorted(kiosk.rag.__all__) == sorted(kiosk.rag._HOMES)


def test_each_name_resolves_to_the_object_in_its_home_module() -> None:
    for name, home in kiosk.rag._HOMES.items():
        assert getattr(kiosk.rag, name) is getattr(importlib.import_module(home), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        kiosk.rag.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("kiosk.rag.no_such_name resolved")
