"""The student checkpoint: self-contained (network config and weights, map decoding, the prior's
frozen decoder), built and loaded with every field checked.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import TypeVar

from mp3d.common.checkpoints import load_weights
from mp3d.model.networks import StudentConfig, StudentNet
from mp3d.model.personmaps import MapConfig
from mp3d.model.prior import PoseDecoder, PriorConfig

KIND = "mp3d.student"
C = TypeVar("C")  # a config dataclass


def student_checkpoint(net: StudentNet, maps: MapConfig, decoder: PoseDecoder, **extra) -> dict:
    """A self-contained student checkpoint (plain types and tensors only)."""
    cfg = asdict(net.cfg)
    return {"kind": KIND, "config": {"net": cfg, "maps": asdict(maps)},
            "state_dict": net.state_dict(), "decoder_config": asdict(decoder.cfg),
            "decoder_state_dict": decoder.state_dict(), **extra}


def _config(cls: type[C], d: object, what: str, source: str | Path) -> C:
    """The frozen config dataclass `cls` from a checkpoint's dict `d`: exactly the dataclass's
    fields, each of its default's type (lists become tuples). ValueError, one line, otherwise."""
    if not isinstance(d, dict):
        raise ValueError(f"student checkpoint {source}: {what} is a {type(d).__name__}, not a dict")
    names = [f.name for f in fields(cls)]
    missing, unknown = [n for n in names if n not in d], sorted(set(d) - set(names), key=str)
    if missing or unknown:
        wrong = ([f"lacks fields {missing}"] if missing else []) + (
            [f"has unknown fields {unknown}"] if unknown else [])
        raise ValueError(f"student checkpoint {source}: {what} {' and '.join(wrong)}")
    vals = {}
    for f in fields(cls):
        v, default = d[f.name], f.default
        if isinstance(default, tuple):
            ok = isinstance(v, (list, tuple)) and all(type(e) is type(default[0]) for e in v)
            v = tuple(v) if ok else v
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        else:
            ok = type(v) is type(default)
        if not ok:
            raise ValueError(f"student checkpoint {source}: {what}[{f.name!r}] is {v!r}, "
                             f"expected {type(default).__name__} like {default!r}")
        vals[f.name] = v
    try:
        return cls(**vals)
    except ValueError as exc:  # the dataclass's own checks
        raise ValueError(f"student checkpoint {source}: {what}: {exc}") from exc


def load_student(ckpt: dict, source: str | Path = "<dict>"
                 ) -> tuple[StudentNet, MapConfig, PoseDecoder]:
    """A student checkpoint (a dict from load_checkpoint) -> (network, map decoding config, pose
    decoder), in eval mode on the CPU. source: the file's path, for the messages. Every field it
    needs must be there and fit: else ValueError, one line starting with the source."""
    if ckpt.get("kind") != KIND:
        raise ValueError(f"student checkpoint {source}: kind is {ckpt.get('kind')!r}, not {KIND!r}")
    missing = [k for k in ("config", "state_dict", "decoder_config", "decoder_state_dict")
               if k not in ckpt]
    config = ckpt.get("config")
    missing += [f"config[{k!r}]" for k in ("net", "maps")
                if isinstance(config, dict) and k not in config]
    if missing:
        raise ValueError(f"student checkpoint {source} lacks {', '.join(missing)}")
    if not isinstance(config, dict):
        raise ValueError(f"student checkpoint {source}: config is a {type(config).__name__}, "
                         "not a dict")
    net = StudentNet(_config(StudentConfig, config["net"], "config['net']", source))
    load_weights(net, ckpt["state_dict"], source=f"student checkpoint {source}")
    decoder = PoseDecoder(_config(PriorConfig, ckpt["decoder_config"], "decoder_config", source))
    load_weights(decoder, ckpt["decoder_state_dict"],
                 source=f"student checkpoint {source} (pose decoder)")
    maps = _config(MapConfig, config["maps"], "config['maps']", source)
    return net.eval(), maps, decoder.eval()
