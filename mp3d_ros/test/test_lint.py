"""The linter is part of the suite: ruff over the whole repository."""

import shutil
import subprocess

from conftest import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a pinned dependency (requirements.txt); run scripts/setup.sh"
    out = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
