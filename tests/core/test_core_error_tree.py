"""The error tree: every exception the package exposes is documented, and every bad argument is a
ConfigurationError whose message (and traceback) never carries a secret (issues 18.7 and 19.7)."""

from __future__ import annotations

import importlib
import inspect
import io
import traceback
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console
from rich.traceback import Traceback

import assetpay_async
from assetpay_async import (
    AssetPayError,
    AssetPaySession,
    ConfigurationError,
    InvalidRequestError,
    JournalError,
    MerchantMismatchError,
)
from assetpay_async import _errors as errors_module

DOC = Path(__file__).parents[2] / "docs" / "errors.md"
PUBLIC_MODULES = (
    "assetpay_async",
    "assetpay_async.callbacks",
    "assetpay_async.redis_limiter",
    "assetpay_async.testing",
    "assetpay_async.sandbox",
)
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjaGFudElkIjoibSJ9.c2VjcmV0LXNpZ25hdHVyZQ\x0bX"
SECRET_PART = "c2VjcmV0LXNpZ25hdHVyZQ"


def _exception_classes() -> set[type[BaseException]]:
    """Every exception class defined by the package that its public modules expose, and their subclasses."""
    found: set[type[BaseException]] = set()
    for name in PUBLIC_MODULES:
        module: ModuleType = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("assetpay_async"):
                found.add(value)
    pending = list(found | {AssetPayError})
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("assetpay_async") and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_exception_class_the_package_exposes_is_in_docs_errors_md() -> None:
    doc = DOC.read_text(encoding="utf-8")
    classes = _exception_classes()
    assert JournalError in classes  # the walk reaches beyond _errors.py
    missing = sorted(cls.__name__ for cls in classes if cls.__name__ not in doc)
    assert missing == []


def test_every_class_of_the_tree_in_the_errors_module_docstring_exists() -> None:
    doc = errors_module.__doc__ or ""
    for cls in _exception_classes():
        if issubclass(cls, AssetPayError):
            assert cls.__name__ in doc, cls.__name__


def test_a_bad_argument_is_always_a_configuration_error() -> None:
    assert issubclass(InvalidRequestError, ConfigurationError)
    assert issubclass(MerchantMismatchError, ConfigurationError)
    assert issubclass(ConfigurationError, ValueError)
    assert not issubclass(JournalError, InvalidRequestError)
    assert not issubclass(JournalError, ConfigurationError)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2-secret@api.example.com",
        "https://:hunter2-secret@api.example.com",
        "https://api.example.com:99999",
        "http://api.example.com:port",
        "http://[::1",
        "https://",
    ],
)
def test_a_bad_base_url_is_a_configuration_error_that_does_not_repeat_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        AssetPaySession(tier="verified", base_url=url)
    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in _sdk_locals(caught.value)


def _sdk_locals(error: BaseException) -> str:
    """The captured locals of the SDK's frames (the test's own frame holds the URL it passed)."""
    summary = traceback.TracebackException.from_exception(error, capture_locals=True)
    frames = [frame for frame in summary.stack if "/assetpay_async/" in frame.filename]
    assert frames
    return repr([frame.locals for frame in frames])


@pytest.mark.parametrize("call", ["quota", "limiter_stats"])
def test_an_unknown_route_group_is_a_configuration_error(call: str) -> None:
    session = AssetPaySession(tier="verified", merchant_id="m")
    with pytest.raises(ConfigurationError):
        getattr(session, call)("no-such-group")


def _refused_token() -> BaseException:
    session = AssetPaySession(tier="verified")
    try:
        session.client(BAD_TOKEN)
    except InvalidRequestError as exc:
        return exc
    raise AssertionError("the token was accepted")


def test_a_traceback_with_captured_locals_of_a_refused_token_formats() -> None:
    error = _refused_token()
    assert isinstance(error, ConfigurationError)
    text = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert "SecretToken(unset)" in text  # the half-built token of __init__, shown without raising
    assert SECRET_PART not in text


def test_rich_show_locals_of_a_refused_token_renders() -> None:
    error = _refused_token()
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(
        Traceback.from_exception(type(error), error, error.__traceback__, show_locals=True)
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "InvalidRequestError" in text
    assert SECRET_PART not in text


def test_the_error_tree_is_exported() -> None:
    for name in ("ConfigurationError", "InvalidRequestError", "JournalError"):
        assert hasattr(assetpay_async, name)
