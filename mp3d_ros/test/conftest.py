"""Shared pytest fixtures: a distinct ROS_DOMAIN_ID per test run, and the repository root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ros_env() -> dict[str, str]:
    """Environment for child ROS processes: a random domain id so parallel runs do not hear each
    other, and unbuffered output."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(1, 101))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return env
