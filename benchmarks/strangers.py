"""The number that matters most: strangers shown as Unknown, and enrolled people named right.

The five celebrity5 people are enrolled from their ``train`` photos (one sample per photo, as
``python -m realtime enroll NAME FOLDER`` does). Then, through the live loop as ``python -m
realtime --source CLIP --headless`` runs it:

- each clip in ``videos/`` (people never enrolled): the share of face frames whose largest face
  is shown as Unknown (target >= 0.98 each);
- the celebrity5 ``val`` photos held 8 frames each: the share of face frames named right
  (target >= 0.92), and the share of photos named right on their last frame, once the vote has
  settled. The live vote shows no name until ``vote_agree`` (3) of a track's frames agree, so the
  first two frames of a new face are Unknown by design (a photo of the same person whose face
  lands where the last one was keeps its track and its name). The same video with every val photo
  itself enrolled measures where that leaves a perfect encoder: the vote's ceiling.

    FACES_DATA=... python -m benchmarks.strangers [--model DIR] [--config FILE]
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.inputs import PEOPLE, clips, photo_video, table_command
from benchmarks.pipelines import run_fast

VAL_HOLD = 8


def largest_names(video: Path, recognizer, gallery, frames: int = 100000) -> dict[int, str | None]:
    """Per face frame (by index), the name shown on its largest face (None = Unknown); frames without a face left out."""
    shown: dict[int, str | None] = {}

    def on_result(i, frame, result):
        if result.faces:
            shown[i] = max(result.faces, key=lambda f: f.box[2] * f.box[3]).name

    run_fast(video, recognizer, gallery, frames, on_result=on_result)
    return shown


def settled_share(shown: dict[int, str | None], truth: list[str], hold: int) -> float:
    """Of the photos held ``hold`` frames each, the share named right on their last frame (a frame
    without a face counts as not named right)."""
    lasts = range(hold - 1, len(truth), hold)
    return sum(shown.get(i) == truth[i] for i in lasts) / max(len(lasts), 1)


def measure(data: Path, model_dir: Path | None = None, config=None) -> list[dict]:
    from realtime.recognizer import Recognizer
    recognizer = Recognizer(model_dir, config)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video, truth = photo_video(Path(tmp), data, hold=VAL_HOLD)
        with celebrity5_gallery(Path(tmp) / "gallery.db", recognizer, data, "train") as gallery:
            for clip in clips(data):
                names = list(largest_names(clip, recognizer, gallery).values())
                rows.append({"input": clip.stem, "enrolled": False, "face_frames": len(names),
                             "unknown": round(sum(n is None for n in names) / max(len(names), 1), 4),
                             "named": sorted({n for n in names if n is not None})})
            shown = largest_names(video, recognizer, gallery, len(truth))
        with celebrity5_gallery(Path(tmp) / "ceiling.db", recognizer, data, "val") as themselves:
            ceiling = largest_names(video, recognizer, themselves, len(truth))
        rows.append({"input": f"celebrity5 val photos x{VAL_HOLD}", "enrolled": True, "face_frames": len(shown),
                     "named_right": named_right(shown, truth),
                     "photos_named_right": round(settled_share(shown, truth, VAL_HOLD), 4),
                     "ceiling": named_right(ceiling, truth)})
    return rows


def celebrity5_gallery(path: Path, recognizer, data: Path, split: str):
    """The five celebrity5 people enrolled from their ``split`` photos, one sample per photo."""
    from realtime.api import Gallery
    gallery = Gallery(path, recognizer)
    for person in PEOPLE:
        gallery.enroll(person, sorted((data / "celebrity5" / split / person).glob("*.jpg")))
    return gallery


def named_right(shown: dict[int, str | None], truth: list[str]) -> float:
    """The share of face frames whose largest face shows the right name."""
    return round(sum(name == truth[i] for i, name in shown.items()) / max(len(shown), 1), 4)


def markdown(rows: list[dict]) -> str:
    lines = ["| input | enrolled? | face frames | shown as Unknown | named right | photos named right (last frame) "
             "| named right with the val photos themselves enrolled (the vote's ceiling) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['input']} | {'yes' if r['enrolled'] else 'no (a stranger)'} | {r['face_frames']} | "
                     f"{'' if r['enrolled'] else format(r['unknown'], '.1%')} | "
                     f"{format(r['named_right'], '.1%') if r['enrolled'] else ''} | "
                     f"{format(r['photos_named_right'], '.1%') if r.get('photos_named_right') is not None else ''} | "
                     f"{format(r['ceiling'], '.1%') if r.get('ceiling') is not None else ''} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    return table_command(argv, "python -m benchmarks.strangers", __doc__.splitlines()[0], measure, markdown,
                         model=True)


if __name__ == "__main__":
    raise SystemExit(main())
