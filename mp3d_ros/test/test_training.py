"""Tiny real training runs: the prior and P learn (loss falls), checkpoints rebuild their models,
training resumes, and bad checkpoint files give clear errors."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from mp3d.cli.main import main as mp3d_main
from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_checkpoint
from mp3d.model.posemap import load_posemap
from mp3d.model.prior import PosePrior


def _log(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory, lafan1_paths) -> Path:
    out = tmp_path_factory.mktemp("prior")
    rc = mp3d_main(["train", "prior", "--train", str(lafan1_paths["test.bvh"]),
                    "--heldout", str(lafan1_paths["test2.bvh"]), "--out", str(out),
                    "--steps", "200", "--batch", "128"])
    assert rc == 0
    return out


def test_prior_learns_and_rebuilds_from_its_checkpoint(tiny_prior):
    log = _log(tiny_prior / "prior_log.csv")
    assert log[-1]["mpjpe_mm"] < 0.6 * log[0]["mpjpe_mm"], log
    for name in ("prior.pt", "prior_loss.png", "prior_poses.png"):
        assert (tiny_prior / name).stat().st_size > 0
    ckpt = load_checkpoint(tiny_prior / "prior.pt", "mp3d.prior")
    assert ckpt["config"]["latent_dim"] == 32 and ckpt["step"] == 200
    model = PosePrior.from_checkpoint(ckpt)
    poses = model.sample(64, torch.Generator().manual_seed(0)).numpy()
    bl = sk.bone_lengths(poses)
    for r, l in sk.LR_BONE_PAIRS:  # the decoder emits exactly symmetric skeletons
        np.testing.assert_allclose(bl[:, r], bl[:, l], rtol=1e-5)
    assert np.isfinite(ckpt["metrics"]["heldout_mpjpe_mm"])


def test_posemap_learns_and_resumes(tiny_prior, lafan1_paths, tmp_path):
    args = ["train", "posemap", "--train", str(lafan1_paths["test.bvh"]), "--prior",
            str(tiny_prior / "prior.pt"), "--out", str(tmp_path), "--batch", "6",
            "--save-every", "1000"]
    assert mp3d_main(args + ["--steps", "30"]) == 0
    assert load_checkpoint(tmp_path / "posemap.pt")["step"] == 30
    assert mp3d_main(args + ["--steps", "60", "--resume"]) == 0
    log = _log(tmp_path / "posemap_log.csv")
    assert [r["step"] for r in log] == [0, 25, 29, 50, 59]  # every 25 steps and the last
    assert log[-1]["loss"] < 0.7 * log[0]["loss"], log
    net, cfg = load_posemap(load_checkpoint(tmp_path / "posemap.pt", "mp3d.posemap"))
    assert cfg.maps.stride == 8 and cfg.heatmap.stride == 4
    assert (tmp_path / "posemap_loss.png").stat().st_size > 0


def test_bad_checkpoints_are_clear_errors(tmp_path, tiny_prior):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tiny_prior / "prior.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(truncated)
    with pytest.raises(ValueError, match="expected 'mp3d.posemap'"):
        load_checkpoint(tiny_prior / "prior.pt", "mp3d.posemap")
