"""Static checks of the launch files and the RViz config (``launch``/``launch_ros`` are not
installable here, so the files are read, not run).

Each launch file must parse, name only executables that setup.py installs, name only config,
rviz and launch files that exist and that setup.py's data_files install to where the launch file
looks for them (``<share>/<folder>/<file>``), pass node parameters through ``params_file`` instead
of repeating any parameter of config/*.yaml, and remap the topics the YAML files name. The RViz
config must be YAML that shows the people's markers in the camera optical frame, seen from behind
the camera.
"""

from __future__ import annotations

import ast
import math
import re
from glob import glob
from pathlib import Path
from typing import Any

import pytest
import yaml

PKG = Path(__file__).resolve().parents[1]
PACKAGE = "mp3d_ros"
LAUNCH_FILES = sorted((PKG / "launch").glob("*.launch.py"))
RVIZ = PKG / "rviz" / "mp3d.rviz"
# A file a launch file names: "<folder>/<name>" joined to the package's share directory.
SHARED_FILE = re.compile(r"^(config|rviz|launch)/[\w.-]+$")


def _setup_tree() -> ast.Module:
    return ast.parse((PKG / "setup.py").read_text())


def _setup_kwarg(name: str) -> ast.expr:
    for node in ast.walk(_setup_tree()):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == name:
                    return kw.value
    raise AssertionError(f"setup.py has no setup({name}=...)")


def console_scripts() -> set[str]:
    """Executable names of setup.py's console_scripts."""
    entry_points = ast.literal_eval(_setup_kwarg("entry_points"))
    return {line.split("=")[0].strip() for line in entry_points["console_scripts"]}


def installed_files() -> dict[str, str]:
    """Source path (relative to the package) -> install folder, from setup.py's data_files.
    The entries are evaluated with glob() relative to the package and PACKAGE as in setup.py."""
    files: dict[str, str] = {}
    env = {"PACKAGE": PACKAGE, "glob": lambda pattern: sorted(
        str(Path(p).relative_to(PKG)) for p in glob(str(PKG / pattern)))}
    for entry in _setup_kwarg("data_files").elts:
        dest, sources = eval(compile(ast.Expression(entry), "setup.py", "eval"),
                             {"__builtins__": {}}, env)
        for src in sources:
            files[src] = dest
    return files


def yaml_parameters() -> set[str]:
    """Every parameter of config/*.yaml: leaf names and dotted names (tracker.max_age_s)."""
    names: set[str] = set()

    def walk(prefix: str, value: Any) -> None:
        for key, sub in value.items():
            dotted = f"{prefix}{key}"
            names.update({str(key), dotted})
            if isinstance(sub, dict):
                walk(f"{dotted}.", sub)

    for path in (PKG / "config").glob("*.yaml"):
        for node in yaml.safe_load(path.read_text()).values():
            walk("", node["ros__parameters"])
    return names


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _strings(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def test_launch_files_exist() -> None:
    assert [p.name for p in LAUNCH_FILES] == [
        "pose.launch.py", "record.launch.py", "replay.launch.py"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_parses_and_defines_generate_launch_description(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in names
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"os", "launch", "launch_ros", "ament_index_python"}, imported


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_executables_are_console_scripts(path: Path) -> None:
    tree = ast.parse(path.read_text())
    scripts = console_scripts()
    ours = []
    for call in _calls(tree, "Node"):
        package, executable = _kwarg(call, "package"), _kwarg(call, "executable")
        assert isinstance(executable, ast.Constant), ast.unparse(call)
        if isinstance(package, ast.Name) and package.id == "PACKAGE" or (
                isinstance(package, ast.Constant) and package.value == PACKAGE):
            ours.append(executable.value)
    missing = [e for e in ours if e not in scripts]
    assert not missing, f"{path.name} runs {missing}, not in setup.py's console_scripts"
    assert ours or _calls(tree, "IncludeLaunchDescription"), f"{path.name} starts no mp3d node"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_files_exist_and_are_installed(path: Path) -> None:
    named = [s for s in _strings(ast.parse(path.read_text())) if SHARED_FILE.match(s)]
    installed = installed_files()
    for rel in named:
        assert (PKG / rel).is_file(), f"{path.name} names {rel}, missing in {PKG}"
        folder = rel.rsplit("/", 1)[0]
        assert installed.get(rel) == f"share/{PACKAGE}/{folder}", (
            f"{path.name} loads <share>/{rel}, but setup.py's data_files install it to "
            f"{installed.get(rel)}: add (f\"share/{{PACKAGE}}/{folder}\", "
            f"glob(\"{folder}/*{Path(rel).suffix}\")) to data_files")


def test_launch_files_name_their_configs() -> None:
    named = {p.name: {s for s in _strings(ast.parse(p.read_text())) if SHARED_FILE.match(s)}
             for p in LAUNCH_FILES}
    assert named == {"pose.launch.py": {"config/pose_node.yaml"},
                     "record.launch.py": {"config/recorder.yaml"},
                     "replay.launch.py": {"config/pose_node.yaml", "launch/pose.launch.py",
                                          "rviz/mp3d.rviz"}}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_parameters_come_from_the_params_file(path: Path) -> None:
    tree = ast.parse(path.read_text())
    in_yaml = yaml_parameters()
    keys = {k.value for d in ast.walk(tree) if isinstance(d, ast.Dict)
            for k in d.keys if isinstance(k, ast.Constant)}
    overrides = {m.group(1) for s in _strings(tree) for m in [re.match(r"^([\w.]+):=", s)] if m}
    repeated = sorted((keys | overrides) & in_yaml - {"use_sim_time"})
    assert not repeated, f"{path.name} repeats YAML parameters {repeated}: pass params_file"
    for call in _calls(tree, "Node"):
        executable = _kwarg(call, "executable")
        if executable.value in ("pose_node", "mp3d_recorder"):
            params = _kwarg(call, "parameters")
            assert params is not None and "LaunchConfiguration('params_file')" in ast.unparse(
                params), f"{path.name}: {executable.value} does not get params_file"


def test_recorder_remaps_the_topics_its_yaml_names() -> None:
    params = yaml.safe_load((PKG / "config" / "recorder.yaml").read_text())
    params = params["mp3d_recorder"]["ros__parameters"]
    tree = ast.parse((PKG / "launch" / "record.launch.py").read_text())
    (node,) = _calls(tree, "Node")
    remapped = {t.elts[0].value for t in _kwarg(node, "remappings").elts}
    assert remapped == {params["image_topic"], params["camera_info_topic"]}


def test_replay_launch_plays_with_clock_and_sim_time() -> None:
    text = (PKG / "launch" / "replay.launch.py").read_text()
    tree = ast.parse(text)
    (play,) = _calls(tree, "ExecuteProcess")
    cmd = ast.unparse(_kwarg(play, "cmd"))
    assert "'ros2', 'bag', 'play'" in cmd and "'--clock'" in cmd
    (include,) = _calls(tree, "IncludeLaunchDescription")
    assert "'use_sim_time': 'true'" in ast.unparse(include)


def _displays(config: dict) -> list[dict]:
    return config["Visualization Manager"]["Displays"]


def test_rviz_config_shows_markers_in_the_camera_frame() -> None:
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_optical_frame"
    by_class: dict[str, list[dict]] = {}
    for d in _displays(config):
        by_class.setdefault(d["Class"], []).append(d)
    markers = by_class["rviz_default_plugins/MarkerArray"]
    assert [m["Topic"]["Value"] for m in markers] == ["/people/markers"]
    assert markers[0]["Enabled"] is True
    images = {d["Topic"]["Value"] for d in by_class["rviz_default_plugins/Image"]}
    assert "/people/debug_image" in images
    assert by_class["rviz_default_plugins/Grid"]


def test_rviz_view_looks_from_behind_the_camera() -> None:
    """Orbit view in the optical frame (x right, y down, z forward): the eye is behind the camera
    (z < 0) and above it (y < 0), looking at a point in front (z > 0)."""
    view = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Views"]["Current"]
    assert view["Class"] == "rviz_default_plugins/Orbit"
    focal = view["Focal Point"]
    yaw, pitch, dist = float(view["Yaw"]), float(view["Pitch"]), float(view["Distance"])
    eye = (focal["X"] + dist * math.cos(yaw) * math.cos(pitch),
           focal["Y"] + dist * math.sin(yaw) * math.cos(pitch),
           focal["Z"] + dist * math.sin(pitch))
    assert focal["Z"] > 0 and eye[2] < 0 and eye[1] < 0 and abs(eye[0]) < 0.1, eye
