"""Shared test plumbing: every test has a deadline; ``async def`` tests run in a fresh
event loop under it."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

#: No async test may run longer than this; a hang fails instead of stalling CI. (Every
#: test, async or not, also has pytest-timeout's deadline: ``timeout`` in pyproject.toml.)
ASYNC_TEST_TIMEOUT = 60.0
#: Seconds a container test may take, images and containers started included.
CONTAINER_TEST_TIMEOUT = 300.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Container tests get a longer deadline than in-process ones (unless they set one)."""
    for item in items:
        if "integration" in item.path.parts and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(CONTAINER_TEST_TIMEOUT))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_TIMEOUT))
    return True
