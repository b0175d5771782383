"""Package a training checkpoint for shipping: drop the optimiser state, store weights in
float16 (loading casts them back to float32), optionally set the person threshold and the
default input size (`mp3d package SRC.pt DST.pt [--peak-threshold T] [--input-size N]`)."""

from __future__ import annotations

from mp3d.common.checkpoints import load_checkpoint, save_checkpoint


def package(src: str, dst: str, peak_threshold: float | None = None,
            input_size: int | None = None) -> dict:
    """Write the packaged copy of checkpoint `src` to `dst`; returns it. peak_threshold: the
    student's person threshold (its decoding config); input_size: its default letterbox long
    side; ValueError for another kind or a size that is not a multiple of 32."""
    ckpt = load_checkpoint(src)
    if (peak_threshold is not None or input_size is not None) and ckpt["kind"] != "mp3d.student":
        raise ValueError(f"{src} is a {ckpt['kind']} checkpoint: only a student has a person "
                         "threshold and an input size")
    ckpt.pop("optimizer", None)
    for key in ("state_dict", "decoder_state_dict", "trunk_state_dict"):
        if key in ckpt:
            ckpt[key] = {k: v.half() if v.is_floating_point() else v
                         for k, v in ckpt[key].items()}
    if peak_threshold is not None:
        ckpt["config"]["decode"]["peak_threshold"] = float(peak_threshold)
    if input_size is not None:
        if input_size < 64 or input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, >= 64, got {input_size}")
        ckpt["config"]["net"]["input_size"] = int(input_size)
    ckpt.setdefault("packaged_from", str(src))  # a repackaged checkpoint keeps its origin
    save_checkpoint(ckpt, dst)
    return ckpt
