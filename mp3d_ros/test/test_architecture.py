"""The core's architecture: layers as folders, imports only downward, no circles, no ROS.

The contracts live in .importlinter and are checked by import-linter (`lint-imports`), which reads
every import, module-level or inside a function. A planted upward import, circle and lazy
mp3d_ros import in a copy of the tree must each break their contract, so the check cannot pass by
checking nothing. docs/architecture.md's diagrams may only name modules that exist.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SRC = REPO / "mp3d_ros"
LAYERS = ("cli", "train", "eval", "infer", "data", "model", "common")
CONTRACTS = 3


def lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(config), "--no-cache"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    res = lint_imports(SRC, REPO / ".importlinter")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert f"Contracts: {CONTRACTS} kept, 0 broken." in res.stdout, res.stdout[-2000:]


def test_each_planted_violation_breaks_its_contract(tmp_path):
    """An upward import (data -> infer), a circle (model.prior <-> model.heatmaps) and a lazy
    mp3d_ros import inside a function of the core: three broken contracts."""
    for pkg in ("mp3d", "mp3d_ros"):
        shutil.copytree(SRC / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    plant = {  # module: (what it imports, from where, inside a function)
        "mp3d/data/posebank.py": ("Person", "mp3d.infer.people"),
        "mp3d/model/heatmaps.py": ("PoseDecoder", "mp3d.model.prior"),
        "mp3d/model/prior.py": ("grid_size", "mp3d.model.heatmaps"),
        "mp3d/common/paths.py": ("conversions", "mp3d_ros"),
    }
    for rel, (name, source) in plant.items():
        with (tmp_path / rel).open("a") as f:
            f.write(f"\n\ndef _planted():\n    from {source} import {name}\n    return {name}\n")
    res = lint_imports(tmp_path, REPO / ".importlinter")
    assert res.returncode != 0
    assert "Contracts: 0 kept, 3 broken." in res.stdout, res.stdout[-3000:]
    assert "mp3d.data is not allowed to import mp3d.infer" in res.stdout
    assert "mp3d.common.paths -> mp3d_ros.conversions" in res.stdout


def test_layers_are_folders_with_a_one_line_docstring():
    for layer in LAYERS:
        init = SRC / "mp3d" / layer / "__init__.py"
        assert init.is_file(), f"layer {layer} is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.splitlines()[0].endswith("."), f"{init}: no one-line docstring"
    flat = sorted(p.name for p in (SRC / "mp3d").glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules outside the layers: {flat}"


@pytest.mark.parametrize("path", sorted((SRC / "mp3d").rglob("*.py")), ids=lambda p: str(
    p.relative_to(SRC)))
def test_every_core_module_says_what_it_is_for(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path} has no module docstring"


def test_architecture_doc_names_only_modules_that_exist():
    text = (REPO / "docs" / "architecture.md").read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "expected the layer diagram and the two flows"
    names = set(re.findall(r"\b(mp3d(?:_ros)?(?:\.\w+)+)", "\n".join(blocks)))
    assert len(names) >= 25, names
    missing = []
    for name in sorted(names):
        rel = Path(*name.split("."))
        if not ((SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()):
            missing.append(name)
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
