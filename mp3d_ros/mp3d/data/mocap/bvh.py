"""Read BioVision Hierarchy (BVH) motion-capture files: skeleton hierarchy plus per-frame channels.

Any BVH file: one or more ROOTs, JOINTs and End Sites, OFFSETs, CHANNELS of any count and order
(Xposition Yposition Zposition Xrotation Yrotation Zrotation, per joint, case-insensitive), then
MOTION with `Frames:` and `Frame Time:`. The motion block is parsed in bulk (one split and one
numpy conversion), not value by value. Errors are `BVHError` (a ValueError) naming the file and,
where there is one, the line.

Joints are stored in file (depth-first) order, so a parent always comes before its children.
End Sites are kept apart from the joints (they carry no channels) and named `<Parent>_End`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Canonical channel names, keyed by lower case.
CHANNEL_NAMES: dict[str, str] = {
    n.lower(): n
    for n in ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
}


class BVHError(ValueError):
    """A malformed or unusable BVH file; the message names the file and line where known."""


@dataclass(frozen=True, eq=False)
class BVH:
    """One BVH file: skeleton and motion.

    names: J joint names (End Sites excluded), depth-first file order.
    parents: J parent indices, -1 for a ROOT; parents[j] < j.
    offsets: (J, 3) joint offsets from the parent (the root's offset as written), file units.
    channels: per joint, its channel names in file order (canonical spelling, e.g. "Zrotation").
    end_names, end_parents: E End Site names (`<Parent>_End`) and parent joint indices.
    end_offsets: (E, 3) End Site offsets from their parent joint.
    frame_time: seconds per frame.
    motion: (F, C) channel values per frame, C = total channel count, joints in order; degrees
        for rotations, file units for positions.
    source: file path or a label, for messages.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_names: tuple[str, ...]
    end_parents: tuple[int, ...]
    end_offsets: np.ndarray
    frame_time: float
    motion: np.ndarray
    source: str = "<string>"
    channel_starts: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        j, e = len(self.names), len(self.end_names)
        assert len(self.parents) == j and len(self.channels) == j, (j, self.parents, self.channels)
        assert self.offsets.shape == (j, 3), self.offsets.shape
        assert len(self.end_parents) == e, (e, self.end_parents)
        assert self.end_offsets.shape == (e, 3), self.end_offsets.shape
        assert all(-1 <= p < i for i, p in enumerate(self.parents)), self.parents
        starts = tuple(int(s) for s in np.cumsum([0] + [len(c) for c in self.channels])[:-1])
        object.__setattr__(self, "channel_starts", starts)
        assert self.motion.ndim == 2 and self.motion.shape[1] == self.num_channels, (
            self.motion.shape, self.num_channels)

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def index(self) -> dict[str, int]:
        """Joint name -> joint index (End Sites not included)."""
        return {n: i for i, n in enumerate(self.names)}

    def all_names(self, end_sites: bool = True) -> tuple[str, ...]:
        """Joint names, followed by End Site names when `end_sites` (the order FK returns)."""
        return self.names + (self.end_names if end_sites else ())

    def joint_motion(self, j: int) -> np.ndarray:
        """Channel values of joint j, (F, len(channels[j]))."""
        s = self.channel_starts[j]
        return self.motion[:, s : s + len(self.channels[j])]


def read_bvh(path: str | Path, *, allow_truncated: bool = False) -> BVH:
    """Read a BVH file. See `parse_bvh` for `allow_truncated`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # every byte is valid latin-1; names may come out odd
    return parse_bvh(text, source=str(path), allow_truncated=allow_truncated)


def parse_bvh(text: str, *, source: str = "<string>", allow_truncated: bool = False) -> BVH:
    """Parse BVH text.

    allow_truncated: accept a file with fewer complete frame lines than `Frames:` declares (a
    partial last line is dropped) instead of raising; at least one complete frame is required.
    Raises BVHError for syntax errors, unknown channel names, wrong value counts on a frame line,
    zero frames, truncation (unless allowed), or a missing MOTION section.
    """
    lines = text.splitlines()
    motion_at = next((i for i, ln in enumerate(lines) if ln.strip().upper() == "MOTION"), None)
    if motion_at is None:
        raise BVHError(f"{source}: missing MOTION section")
    hier = _Hierarchy(lines[:motion_at], source)
    hier.parse()
    num_channels = sum(len(c) for c in hier.channels)
    if num_channels == 0:
        raise BVHError(f"{source}: the hierarchy declares no channels")

    i = motion_at + 1
    declared, i = _header_value(lines, i, "frames:", source)
    frame_time_s, i = _header_value(lines, i, "frame time:", source)
    try:
        num_frames = int(declared)
        frame_time = float(frame_time_s)
    except ValueError as exc:
        raise BVHError(f"{source}: bad 'Frames:' or 'Frame Time:' value ({exc})") from None
    if num_frames <= 0:
        raise BVHError(f"{source}: no frames ('Frames: {declared}')")
    if not frame_time > 0:
        raise BVHError(f"{source}: 'Frame Time:' must be positive, got {frame_time_s}")
    motion = _parse_motion(lines, i, num_frames, num_channels, source, allow_truncated)
    return BVH(
        names=tuple(hier.names), parents=tuple(hier.parents),
        offsets=np.array(hier.offsets, dtype=np.float64).reshape(-1, 3),
        channels=tuple(hier.channels), end_names=tuple(hier.end_names),
        end_parents=tuple(hier.end_parents),
        end_offsets=np.array(hier.end_offsets, dtype=np.float64).reshape(-1, 3),
        frame_time=frame_time, motion=motion, source=source,
    )


def _header_value(lines: list[str], i: int, key: str, source: str) -> tuple[str, int]:
    """Value after `key` (lower case, e.g. "frames:") on the next non-blank line from i."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or not lines[i].strip().lower().startswith(key):
        raise BVHError(f"{source}:{i + 1}: expected '{key.capitalize()}' after MOTION")
    return lines[i].strip()[len(key):].strip(), i + 1


def _parse_motion(lines: list[str], start: int, num_frames: int, num_channels: int, source: str,
                  allow_truncated: bool) -> np.ndarray:
    """Frame lines from `start` -> (F, C) float64, with count, truncation and number checks."""
    rows: list[list[str]] = []
    line_nos: list[int] = []
    for n, ln in enumerate(lines[start:], start + 1):
        toks = ln.split()
        if toks:
            rows.append(toks)
            line_nos.append(n)
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts != num_channels)
    partial_last = False
    if bad.size:
        b = int(bad[0])
        if b == len(rows) - 1 and counts[b] < num_channels:
            partial_last = True  # the file ends inside a frame line: truncated
        else:
            raise BVHError(f"{source}:{line_nos[b]}: frame {b}: expected {num_channels} values, "
                           f"found {counts[b]}")
    complete = len(rows) - int(partial_last)
    if complete > num_frames:
        raise BVHError(f"{source}:{line_nos[num_frames]}: {complete} frame lines, more than the "
                       f"{num_frames} declared in 'Frames:'")
    if complete < num_frames or partial_last:
        where = f"{source}:{line_nos[-1]}" if line_nos else source
        msg = (f"{where}: truncated: found {complete} complete frame lines of {num_frames} "
               f"declared in 'Frames:'")
        if not allow_truncated:
            raise BVHError(msg + " (allow_truncated / --allow-truncated keeps the complete ones)")
        if complete == 0:
            raise BVHError(f"{where}: no frames: found 0 complete frame lines of {num_frames} "
                           f"declared")
        rows = rows[:complete]
    try:
        flat = np.array(list(itertools.chain.from_iterable(rows)), dtype=np.float64)
    except ValueError:
        for r, n in zip(rows, line_nos):
            for tok in r:
                try:
                    float(tok)
                except ValueError:
                    raise BVHError(f"{source}:{n}: not a number: {tok!r}") from None
        raise
    motion = flat.reshape(len(rows), num_channels)
    assert motion.shape == (len(rows), num_channels), motion.shape
    return motion


class _Hierarchy:
    """Recursive-descent parser of the HIERARCHY block."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.source = source
        self.tokens: list[tuple[str, int]] = []
        for n, ln in enumerate(lines, 1):
            toks = ln.split()
            if toks and toks[0].upper() in ("ROOT", "JOINT"):
                # A name may contain spaces: the rest of the line, up to a trailing "{".
                brace = toks[-1] == "{" and len(toks) > 2
                name = " ".join(toks[1:-1] if brace else toks[1:])
                self.tokens += [(toks[0].upper(), n), (name, n)] + ([("{", n)] if brace else [])
            else:
                self.tokens += [(t, n) for t in toks]
        self.pos = 0
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[list[float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_names: list[str] = []
        self.end_parents: list[int] = []
        self.end_offsets: list[list[float]] = []

    def error(self, msg: str, line: int | None = None) -> BVHError:
        if line is None:
            line = self.tokens[min(self.pos, len(self.tokens) - 1)][1] if self.tokens else 1
        return BVHError(f"{self.source}:{line}: {msg}")

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.tokens):
            last = self.tokens[-1][1] if self.tokens else 1
            raise self.error(f"unexpected end of HIERARCHY, expected {what}", last)
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r}, found {tok!r}", line)
        return line

    def floats(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            tok, line = self.next("a number")
            try:
                out.append(float(tok))
            except ValueError:
                raise self.error(f"expected a number, found {tok!r}", line) from None
        return out

    def parse(self) -> None:
        self.expect("HIERARCHY")
        if self.peek() != "ROOT":
            raise self.error("expected ROOT after HIERARCHY")
        while self.peek() == "ROOT":
            self.joint(-1)
        if self.peek() is not None:
            tok, line = self.tokens[self.pos]
            raise self.error(f"unexpected {tok!r} after the last ROOT", line)

    def joint(self, parent: int) -> None:
        self.next("ROOT or JOINT")
        name, line = self.next("a joint name")
        if name in self.names:
            raise self.error(f"duplicate joint name {name!r}", line)
        self.expect("{")
        self.expect("OFFSET")
        offset = self.floats(3)
        channels: tuple[str, ...] = ()
        if (self.peek() or "").upper() == "CHANNELS":
            self.next("CHANNELS")
            tok, line = self.next("a channel count")
            try:
                count = int(tok)
            except ValueError:
                raise self.error(f"expected a channel count, found {tok!r}", line) from None
            chans = []
            for _ in range(count):
                tok, line = self.next(f"{count} channel names")
                canon = CHANNEL_NAMES.get(tok.lower())
                if canon is None:
                    raise self.error(f"joint {name!r}: unknown channel name {tok!r} (expected one "
                                     f"of {', '.join(CHANNEL_NAMES.values())})", line)
                if canon in chans:
                    raise self.error(f"joint {name!r}: channel {canon} listed twice", line)
                chans.append(canon)
            channels = tuple(chans)
        me = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append(offset)
        self.channels.append(channels)
        while True:
            tok = (self.peek() or "").upper()
            if tok == "JOINT":
                self.joint(me)
            elif tok == "END":
                self.next("End")
                self.expect("Site")
                self.expect("{")
                self.expect("OFFSET")
                self.end_offsets.append(self.floats(3))
                self.expect("}")
                self.end_parents.append(me)
                self.end_names.append(self._end_name(name))
            elif tok == "}":
                self.next("}")
                return
            elif tok == "CHANNELS":
                raise self.error(f"joint {name!r}: CHANNELS must come right after OFFSET")
            else:
                found = self.peek()
                raise self.error(f"joint {name!r}: expected JOINT, End Site or '}}', found "
                                 f"{found!r}" if found else f"joint {name!r}: missing '}}'")

    def _end_name(self, parent: str) -> str:
        base = f"{parent}_End"
        name, k = base, 1
        taken = set(self.names) | set(self.end_names)
        while name in taken:
            name, k = f"{base}{k}", k + 1
        return name
