"""Test-session setup: CI sets NUMTORCH_REQUIRE_TORCH=1 so missing PyTorch fails the run."""

import os

import pytest


def pytest_sessionstart(session):
    if os.environ.get("NUMTORCH_REQUIRE_TORCH") != "1":
        return
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise pytest.UsageError(
            f"NUMTORCH_REQUIRE_TORCH=1 but torch cannot be imported ({error}): "
            "the PyTorch reference tests cannot run"
        ) from None
