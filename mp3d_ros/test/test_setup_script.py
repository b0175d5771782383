"""scripts/setup.sh stops with one line, before pip starts, when the disk is too full."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_setup_refuses_a_full_disk_with_one_line(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "scripts", tree / "scripts")
    for req in REPO.glob("requirements*.txt"):
        shutil.copy(req, tree)
    # A df that reports 1 GB free on every disk.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_df = bin_dir / "df"
    fake_df.write_text(
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/fake 100000000 98951424 1048576 99% /'\n"
    )
    fake_df.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        ["bash", "scripts/setup.sh", "--distro", "kilted"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "needs about 3 GB free" in lines[0] and "1 GB are free" in lines[0]
    assert "installing pinned requirements" not in out.stdout
    # pip never ran: the new venv holds no torch and no stamp.
    assert not (tree / ".venv" / ".mp3d-req").exists()
    assert not list((tree / ".venv").glob("lib/python*/site-packages/torch"))
