"""Pre-encoded test clips for the camera simulator.

Contract:

* ``make_clip(dir, ...)`` returns a :class:`Clip` whose files exist and are complete.  Files are
  cached in ``dir`` under a name derived from every parameter, so a second call with the same
  parameters costs one ``stat``.  Writes go to a temporary name in the same directory and are
  renamed into place, so parallel test processes either see a whole clip or none (two processes may
  both encode the same clip; the last rename wins and both results are identical in shape).
* The video file is a raw Annex-B elementary stream (``.h264`` / ``.h265``) with an access-unit
  delimiter in front of every frame (the simulator splits on it), no B-frames, a closed fixed GOP of
  ``fps * gop_s`` frames with no scene-cut keyframes, and the parameter sets (VPS/SPS/PPS) repeated
  in front of every keyframe, as a real camera sends them.
* ``picture`` picks what it shows: ``moving`` (test patterns in motion, the default), or what a
  faulty camera sends: ``black``, ``frozen`` (one detailed picture, unchanging) or ``flat`` (grey).
* With ``audio=True`` a separate ADTS AAC file (mono sine, 1024 samples per frame) of the same
  duration is written next to it.

Only the standard library and the ``ffmpeg`` binary are used, so this imports in the project venv.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path

__all__ = ["FFMPEG", "Clip", "make_clip"]

FFMPEG = os.environ.get("VMSD_TEST_FFMPEG", "/usr/bin/ffmpeg")

# testsrc2 is the base picture; `variant` picks a different lavfi source / tint so that two clips
# with the same geometry still differ visibly (a different SPS needs a different size or codec,
# which the caller passes explicitly).
_SOURCES = ("testsrc2", "testsrc", "smptehdbars", "rgbtestsrc")
# What a faulty camera shows, for function checks: a capped or dead sensor (black), an encoder
# stuck on one frame (frozen: a detailed still picture), a covered lens (flat grey).
_PICTURES = {"moving": "", "black": "color=c=black", "frozen": "smptehdbars", "flat": "color=c=0x808080"}


@dataclasses.dataclass(frozen=True)
class Clip:
    """A cached, pre-encoded clip.  ``video`` is Annex-B; ``audio`` is ADTS AAC or ``None``."""

    video: Path
    codec: str  # "h264" | "h265"
    width: int
    height: int
    fps: int
    gop_s: float
    seconds: float
    audio: Path | None = None
    audio_rate: int | None = None

    @property
    def gop_frames(self) -> int:
        """Frames per GOP (the keyframe interval)."""
        return round(self.fps * self.gop_s)


def make_clip(
    dir: str | os.PathLike[str],
    *,
    codec: str = "h264",
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop_s: float = 2,
    seconds: float = 10,
    audio: bool = False,
    bitrate: str = "1M",
    variant: int = 0,
    audio_rate: int = 16000,
    picture: str = "moving",
) -> Clip:
    """Return a cached clip with these parameters, encoding it with ffmpeg if it is missing.

    Raises ``ValueError`` for an unknown codec or audio rate and ``RuntimeError`` (with ffmpeg's
    stderr) when encoding fails.  Blocks for the encode: ~0.5 s for 10 s of 640x360 H.264,
    ~2 s for H.265.
    """
    if codec not in ("h264", "h265"):
        raise ValueError(f"codec must be 'h264' or 'h265', not {codec!r}")
    if picture not in _PICTURES:
        raise ValueError(f"picture must be one of {sorted(_PICTURES)}, not {picture!r}")
    if audio_rate not in (16000, 48000):
        raise ValueError(f"audio_rate must be 16000 or 48000, not {audio_rate!r}")
    out_dir = Path(dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gop = round(fps * gop_s)
    stem = f"{codec}_{width}x{height}_{fps}fps_gop{gop}_{seconds:g}s_{bitrate}_v{variant}"
    if picture != "moving":
        stem += f"_{picture}"
    video = out_dir / f"{stem}.{codec}"
    if not video.exists():
        _encode_video(
            video,
            codec=codec,
            width=width,
            height=height,
            fps=fps,
            gop=gop,
            seconds=seconds,
            bitrate=bitrate,
            variant=variant,
            picture=picture,
        )
    audio_path = None
    if audio:
        audio_path = out_dir / f"sine_{audio_rate}hz_{seconds:g}s_v{variant}.aac"
        if not audio_path.exists():
            _encode_audio(audio_path, rate=audio_rate, seconds=seconds, variant=variant)
    return Clip(
        video=video,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        gop_s=gop_s,
        seconds=seconds,
        audio=audio_path,
        audio_rate=audio_rate if audio else None,
    )


def _encode_video(
    dest: Path,
    *,
    codec: str,
    width: int,
    height: int,
    fps: int,
    gop: int,
    seconds: float,
    bitrate: str,
    variant: int,
    picture: str = "moving",
) -> None:
    source = _PICTURES[picture] or _SOURCES[variant % len(_SOURCES)]
    vf = ["-vf", f"hue=h={60 * (variant // len(_SOURCES))}"] if variant >= len(_SOURCES) else []
    common_gop = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    if codec == "h264":
        # aud=1: a delimiter before every AU.  repeat-headers=1 puts SPS/PPS before every IDR
        # (libx264 already does so for raw output, but say it so a changed default cannot bite).
        # x264 GOPs are closed unless open-gop is asked for; -bf 0 removes reordering.
        enc = [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "0",
            "-x264-params",
            f"aud=1:repeat-headers=1:{common_gop}",
            "-f",
            "h264",
        ]
    else:
        enc = [
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-x265-params",
            f"aud=1:repeat-headers=1:bframes=0:open-gop=0:{common_gop}:log-level=error",
            "-f",
            "hevc",
        ]
    args = [
        FFMPEG,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{source}{':' if '=' in source else '='}size={width}x{height}:rate={fps}:duration={seconds:g}",
        *vf,
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        bitrate,
        "-g",
        str(gop),
        *enc,
    ]
    _run_atomic(args, dest)


def _encode_audio(dest: Path, *, rate: int, seconds: float, variant: int) -> None:
    args = [
        FFMPEG,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={440 + 110 * variant}:sample_rate={rate}:duration={seconds:g}",
        "-ac",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-f",
        "adts",
    ]
    _run_atomic(args, dest)


def _run_atomic(args: list[str], dest: Path) -> None:
    """Run ffmpeg writing to a temp file in dest's directory, then rename it over ``dest``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        proc = subprocess.run([*args, tmp], capture_output=True, text=True)
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise RuntimeError(
                f"ffmpeg failed ({proc.returncode}) making {dest.name}:\n{' '.join(args)}\n{proc.stderr}"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users (e.g. a service account) read clips
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
