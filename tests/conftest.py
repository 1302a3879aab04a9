"""Shared test plumbing: ``async def`` tests run in a fresh event loop with a deadline."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

#: No async test may run longer than this; a hang fails instead of stalling CI.
ASYNC_TEST_TIMEOUT = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), ASYNC_TEST_TIMEOUT))
    return True
