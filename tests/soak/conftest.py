"""The soak uses the container tests' engine check and clean-up."""

from __future__ import annotations

from ..integration.conftest import docker_engine, network

__all__ = ["docker_engine", "network"]
