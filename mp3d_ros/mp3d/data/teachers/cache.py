"""The teacher cache: teacher outputs on disk keyed by teacher and image, so no frame is taught
twice; `teach` fills it for a dataset and records the teacher's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mp3d.data.teachers.base import NUM_KP, Teacher, TeacherPeople


@runtime_checkable
class TeacherFrame(Protocol):
    """What the cache needs of a frame (`mp3d.data.images.dataset.Frame` is one).

    source: identity of the dataset it comes from (groups the cache files); identity: a string that
    identifies the image content (source + frame id + any per-file fingerprint); frame_id: a
    readable id; rgb: the HxWx3 uint8 image, loaded only when the teacher must run.
    """

    frame_id: str
    source: str

    @property
    def identity(self) -> str: ...

    @property
    def rgb(self) -> np.ndarray: ...


def _slug(s: str, n: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:n].strip("_") or "x"


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class TeacherCache:
    """Teacher outputs on disk, so each (teacher, image) pair is computed once.

    Layout: ``folder/<teacher slug>-<hash>/<source slug>-<hash>.npz`` holds one dataset source's
    frames (keys, frame ids, image sizes, offsets (F+1,) into concatenated keypoints (P, 17, 2),
    scores (P, 17), boxes (P, 4), person scores (P,)); new results go into
    ``...<hash>.part-*.npz`` files written atomically (temp file + rename) every `flush_every`
    computed frames and when a run stops for any reason, then are merged into the main file at the
    end of a run. Key of a frame: sha256 over (teacher.name, frame.identity). Concurrent writers
    never corrupt the cache but may lose each other's merges (the frames are then recomputed).
    """

    def __init__(self, folder: str | Path, flush_every: int = 32) -> None:
        self.folder = Path(folder)
        self.flush_every = int(flush_every)
        # (teacher name, source) -> {key: (frame id, people)}, and the part files read or written.
        self._groups: dict[tuple[str, str], dict[str, tuple[str, TeacherPeople]]] = {}
        self._parts: dict[tuple[str, str], list[Path]] = {}

    # -- paths and keys
    def teacher_dir(self, teacher_name: str) -> Path:
        """Folder holding one teacher's files."""
        return self.folder / f"{_slug(teacher_name, 48)}-{_sha(teacher_name)[:12]}"

    def _group_stem(self, teacher_name: str, source: str) -> Path:
        return self.teacher_dir(teacher_name) / f"{_slug(source, 48)}-{_sha(source)[:16]}"

    @staticmethod
    def key(teacher_name: str, identity: str) -> str:
        """Cache key of one image for one teacher: sha256 over (teacher name, image identity)."""
        return _sha(teacher_name, identity)

    # -- reading
    def _load_group(self, teacher_name: str, source: str
                    ) -> dict[str, tuple[str, TeacherPeople]]:
        gk = (teacher_name, source)
        if gk in self._groups:
            return self._groups[gk]
        stem = self._group_stem(teacher_name, source)
        entries: dict[str, tuple[str, TeacherPeople]] = {}
        parts = sorted(stem.parent.glob(stem.name + ".part-*.npz"))
        main = stem.with_suffix(".npz")
        for path in ([main] if main.is_file() else []) + parts:
            entries.update(_read_npz(path))
        self._groups[gk] = entries
        self._parts[gk] = parts
        return entries

    def lookup(self, frame: TeacherFrame, teacher_name: str) -> TeacherPeople | None:
        """The cached result of one frame, or None (never runs a teacher)."""
        hit = self._load_group(teacher_name, frame.source).get(
            self.key(teacher_name, frame.identity))
        return None if hit is None else hit[1]

    def __contains__(self, item: tuple[TeacherFrame, str]) -> bool:
        """``(frame, teacher_name) in cache``."""
        frame, teacher_name = item
        return self.lookup(frame, teacher_name) is not None

    # -- writing
    def _flush(self, gk: tuple[str, str], pending: dict[str, tuple[str, TeacherPeople]]) -> None:
        if not pending:
            return
        stem = self._group_stem(*gk)
        path = stem.parent / f"{stem.name}.part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz"
        _write_npz(path, *gk, pending)
        self._parts.setdefault(gk, []).append(path)
        pending.clear()

    def _compact(self, gk: tuple[str, str]) -> None:
        """Merge a group's part files into its main file (atomically), then delete the parts."""
        parts = self._parts.get(gk, [])
        if not parts:
            return
        _write_npz(self._group_stem(*gk).with_suffix(".npz"), *gk, self._groups[gk])
        for p in parts:
            p.unlink(missing_ok=True)
        self._parts[gk] = []

    def get_or_compute(self, frames: Iterable[TeacherFrame], teacher: Teacher,
                       progress: bool = True,
                       read: Callable[[TeacherFrame], np.ndarray | None] | None = None
                       ) -> list[TeacherPeople | None]:
        """Teacher outputs for `frames`, in order, running `teacher` only on frames not cached.

        Only uncached frames are decoded, by `read` (default ``frame.rgb``); a frame it returns
        None for (one that cannot be decoded, see `mp3d.data.images.skips.FrameSkips`) is skipped:
        its entry is None and nothing is cached for it. New results are saved every `flush_every`
        computed frames and whenever the run stops (also by an exception or
        KeyboardInterrupt), so finished frames are never lost.
        """
        name = teacher.name
        out: list[TeacherPeople | None] = []
        pending: dict[tuple[str, str], dict[str, tuple[str, TeacherPeople]]] = {}
        n_pending = 0
        bar = None
        if progress:
            from tqdm import tqdm

            total = len(frames) if hasattr(frames, "__len__") else None
            bar = tqdm(total=total, desc=f"teacher {name[:40]}", unit="frame")
        touched: set[tuple[str, str]] = set()
        try:
            for frame in frames:
                gk = (name, frame.source)
                touched.add(gk)
                entries = self._load_group(*gk)
                key = self.key(name, frame.identity)
                hit = entries.get(key)
                if hit is None:
                    rgb = frame.rgb if read is None else read(frame)
                    if rgb is None:
                        out.append(None)
                        if bar is not None:
                            bar.update(1)
                        continue
                    hit = (frame.frame_id, teacher(rgb))
                    entries[key] = hit
                    pending.setdefault(gk, {})[key] = hit
                    n_pending += 1
                    if n_pending >= self.flush_every:
                        for g, p in pending.items():
                            self._flush(g, p)
                        n_pending = 0
                out.append(hit[1])
                if bar is not None:
                    bar.update(1)
        finally:
            for g, p in pending.items():
                self._flush(g, p)
            if bar is not None:
                bar.close()
        for gk in touched:
            self._compact(gk)
        return out


def _write_npz(path: Path, teacher_name: str, source: str,
               entries: dict[str, tuple[str, TeacherPeople]]) -> None:
    """Write entries {key: (frame id, people)} atomically to `path`."""
    keys = list(entries)
    people = [entries[k][1] for k in keys]
    counts = np.array([len(p) for p in people], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def cat(attr: str, shape: tuple[int, ...]) -> np.ndarray:
        arrs = [getattr(p, attr) for p in people]
        return np.concatenate(arrs) if arrs else np.zeros((0,) + shape, np.float32)

    sizes = np.array([p.image_size if p.image_size is not None else (-1, -1) for p in people],
                     dtype=np.int64).reshape(-1, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype="U64"),
                     frame_ids=np.array([entries[k][0] for k in keys], dtype=str),
                     image_sizes=sizes, offsets=offsets,
                     keypoints=cat("keypoints", (NUM_KP, 2)), scores=cat("scores", (NUM_KP,)),
                     boxes=cat("boxes", (4,)), person_scores=cat("person_scores", ()),
                     teacher=np.array(teacher_name), source=np.array(source))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_npz(path: Path) -> dict[str, tuple[str, TeacherPeople]]:
    """Read one cache file into {key: (frame id, people)}."""
    with np.load(path, allow_pickle=False) as z:
        keys, ids, offsets, sizes = z["keys"], z["frame_ids"], z["offsets"], z["image_sizes"]
        kp, sc, bx, ps = z["keypoints"], z["scores"], z["boxes"], z["person_scores"]
    out = {}
    for i, k in enumerate(keys):
        a, b = int(offsets[i]), int(offsets[i + 1])
        size = None if sizes[i, 0] < 0 else (int(sizes[i, 0]), int(sizes[i, 1]))
        out[str(k)] = (str(ids[i]), TeacherPeople(kp[a:b], sc[a:b], bx[a:b], ps[a:b], size))
    return out



def teacher_name_for(cache: str | Path, data: str | Path, teacher: str) -> str:
    """The recorded full name of `teacher` (a part of it, e.g. "yolo11n-pose") for `data`."""
    index = Path(cache) / "teachers.json"
    if not index.is_file():
        raise FileNotFoundError(f"no teacher outputs cached in {cache}: run `mp3d teach` first")
    names = json.loads(index.read_text()).get(str(Path(data).resolve()), [])
    hits = [n for n in names if teacher in n]
    if not hits:
        raise LookupError(f"no {teacher!r} outputs cached for {data} in {cache} "
                          f"(have: {names}); run `mp3d teach {data} --teacher {teacher}`")
    return hits[-1]


def teach(data: str | Path, teacher: Teacher, cache: str | Path, topic: str | None = None,
          start_frac: float = 0.0, end_frac: float = 1.0, strict: bool = False,
          progress: bool = True) -> list[TeacherPeople | None]:
    """Cache `teacher`'s outputs on the frames of `data` in [start_frac, end_frac) and record its
    name in CACHE/teachers.json; prints the skip summary (when frames were skipped) and a final
    line. Returns the outputs, None for each skipped frame; with `strict`, the first frame that
    cannot be decoded raises `mp3d.data.images.skips.BadFrameError`."""
    from mp3d.data.images import open_dataset
    from mp3d.data.images.dataset import split_by_time
    from mp3d.data.images.skips import FrameSkips

    skips = FrameSkips(strict=strict)
    with open_dataset(data, topic=topic) if topic else open_dataset(data) as ds:
        frames = split_by_time(ds, start_frac, end_frac)
        people = TeacherCache(cache).get_or_compute(frames, teacher, progress, read=skips.read)
    index = Path(cache) / "teachers.json"
    names = json.loads(index.read_text()) if index.is_file() else {}
    key = str(Path(data).resolve())
    names[key] = sorted(set(names.get(key, [])) | {teacher.name})
    index.write_text(json.dumps(names, indent=1))
    if skips.skipped:
        print(skips.summary(len(frames)))
    done = len(frames) - skips.skipped
    n = sum(len(p) for p in people if p is not None)
    print(f"{teacher.name}: {done} frames, {n} people ({n / max(done, 1):.2f} per frame), "
          f"cached in {cache}")
    return people
