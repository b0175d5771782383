"""Package a training checkpoint for shipping: drop the optimiser state, store weights in
float16 (loading casts them back to float32), optionally set the person threshold
(`mp3d package SRC.pt DST.pt [--peak-threshold T]`)."""

from __future__ import annotations

from mp3d.common.checkpoints import load_checkpoint, save_checkpoint


def package(src: str, dst: str, peak_threshold: float | None = None) -> dict:
    ckpt = load_checkpoint(src)
    ckpt.pop("optimizer", None)
    for key in ("state_dict", "decoder_state_dict"):
        if key in ckpt:
            ckpt[key] = {k: v.half() if v.is_floating_point() else v
                         for k, v in ckpt[key].items()}
    if peak_threshold is not None:
        ckpt["config"]["maps"]["peak_threshold"] = float(peak_threshold)
    ckpt["packaged_from"] = str(src)
    save_checkpoint(ckpt, dst)
    return ckpt
