"""How well unknown faces are grouped by person, measured on people the encoder never saw.

Every photo of LFW people never trained on stands for one sighting of a stranger (a track with one
view: the hardest case, a person seen on different days in different light). The sightings are
grouped as the live program groups unknown tracks (``realtime.unknowns.grouping``) and scored:

- merge rate: of the pairs of sightings of different people, the share put in one group;
- people merged: the share of people who share a group with someone else;
- split rate: of the pairs of sightings of one person, the share put in different groups;
- purity: the share of sightings whose group's most common person is their own.

At the threshold the live program uses (the encoder's open-set point, ``group_threshold``): first
as the program meets strangers, in sets of DESIGN_PEOPLE people (the gallery size the open-set
point was chosen for: a door camera's strangers of some weeks), each set's sightings arriving one
at a time in a random order and joined to the groups so far (the live rule); then all the people
at once, for each linkage (batch clustering) and the live rule, and over a sweep of thresholds
for reference. Then the four shared clips: their faces as tracks of a few views each (each track
its views' mean direction, as live), all four clips played twice and grouped by the live rule (the
aim: four groups, one person each). It also prints the median
sharpness of the aligned crops (``realtime.unknowns.quality.SHARPNESS_HALF`` is that median), and
what collecting costs the live loop: the four clips played as ``python -m realtime --headless``
plays them, with collection off and on (frames per second, CPU per frame, stored and grouped on
the store's writer thread).

People: ``--people devtest`` (LFW ``pairsDevTest.txt``: never trained on, never used to choose a
threshold), or a file of names, one a line (``models/calibration-people.txt``, the held-out people
the threshold of an SFace encoder is calibrated on).

    FACES_DATA=... python -m benchmarks.unknowns [--model DIR] [--people devtest|FILE] [--photos 10]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.inputs import DataError, clips, data_flag, data_folder, person_of_clip, read_frames

log = logging.getLogger("benchmarks")

SWEEP = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CLIP_STEP = 3           # every third frame of a clip is a view
VIEWS_PER_TRACK = 5     # a clip's views in tracks of five (the live per-track cap)
DESIGN_PEOPLE = 100     # encoder.json's open_set_gallery_people


@dataclass
class Faces:
    embeddings: np.ndarray      # (n, d), one per sighting
    people: list[str]
    sharpness: list[float]


def read_people(spec: str, data: Path) -> list[str]:
    """The people named by ``--people``, sorted: LFW's DevTest pairs, or a file of names (or pairs)."""
    if spec == "devtest":
        from training.lfw import people_in_pairs
        return sorted(people_in_pairs(data / "lfw_pairs" / "pairsDevTest.txt"))
    from training.lfw import read_people_file
    return sorted(read_people_file(Path(spec), "--people"))


def largest_face(recognizer, image: np.ndarray):
    """The embedding and aligned crop of the largest face that holds one, or None."""
    boxes = recognizer.detect(image)
    if not boxes:
        return None
    crops, kept = recognizer.crops(image, boxes[:1])
    if not kept:
        return None
    return recognizer.encode(crops)[0], crops[0]


def encode_people(recognizer, data: Path, people: list[str], photos: int) -> Faces:
    from realtime.images import read_image
    from realtime.unknowns.quality import sharpness
    emb, who, sharp = [], [], []
    for person in people:
        for path in sorted((data / "lfw" / person).glob("*.jpg"))[:photos]:
            found = largest_face(recognizer, read_image(path))
            if found is not None:
                emb.append(found[0])
                who.append(person)
                sharp.append(sharpness(found[1]))
    return Faces(np.asarray(emb, np.float32), who, sharp)


def encode_clips(recognizer, data: Path) -> tuple[list[np.ndarray], list[str], list[float]]:
    """Each clip's faces (every CLIP_STEP-th frame) in tracks of VIEWS_PER_TRACK views."""
    from realtime.unknowns.quality import sharpness
    tracks, truth, sharp = [], [], []
    for clip in clips(data):
        views = []
        for frame in read_frames(clip, 100000)[::CLIP_STEP]:
            found = largest_face(recognizer, frame)
            if found is not None:
                views.append(found[0])
                sharp.append(sharpness(found[1]))
        for start in range(0, len(views), VIEWS_PER_TRACK):
            tracks.append(np.asarray(views[start:start + VIEWS_PER_TRACK]))
            truth.append(person_of_clip(clip))
    return tracks, truth, sharp


def online(tracks: list[np.ndarray], threshold_for, order) -> list[int]:
    """Group labels when the tracks arrive in ``order``, each joined to the groups so far (the live rule)."""
    from realtime.unknowns.grouping import join
    groups: dict[int, np.ndarray] = {}
    owner: dict[int, int] = {}
    for k in order:
        merged = join(tracks[k], groups, threshold_for(len(groups)))
        gid = min(merged) if merged else len(owner) + 1
        groups[gid] = np.concatenate([tracks[k]] + [groups.pop(g) for g in merged])
        for t, g in owner.items():
            if g in merged:
                owner[t] = gid
        owner[k] = gid
    return [owner[k] for k in range(len(tracks))]


def score(labels: list[int], truth: list[str]) -> dict:
    from realtime.unknowns.grouping import pair_rates, purity
    merge, split = pair_rates(labels, truth)
    members: dict[int, set] = {}
    for label, person in zip(labels, truth):
        members.setdefault(label, set()).add(person)
    mixed = [m for m in members.values() if len(m) > 1]
    people = len(set(truth))
    return {"groups": len(members), "people": people, "merge_rate": merge, "split_rate": split,
            "purity": purity(labels, truth), "mixed_groups": len(mixed),
            "people_merged": len(set().union(*mixed)) / people if mixed else 0.0}


def in_sets(tracks: list[np.ndarray], truth: list[str], size: int, threshold_for, seed: int) -> dict:
    """The live rule on disjoint sets of ``size`` people (a camera's strangers), scores summed over the sets."""
    from realtime.unknowns.grouping import pair_counts
    rng = np.random.default_rng(seed)
    people = sorted(set(truth))
    rng.shuffle(people)
    totals = {"groups": 0, "people": 0, "mixed_groups": 0, "merged": 0.0, "pairs_diff": 0, "merged_pairs": 0,
              "pairs_same": 0, "split_pairs": 0, "pure": 0.0, "sets": 0}
    sightings = 0
    for start in range(0, len(people) - size + 1, size):
        chosen = set(people[start:start + size])
        idx = [i for i, p in enumerate(truth) if p in chosen]
        sub_truth = [truth[i] for i in idx]
        labels = online([tracks[i] for i in idx], threshold_for, rng.permutation(len(idx)))
        r = score(labels, sub_truth)
        for key, count in zip(("pairs_diff", "merged_pairs", "pairs_same", "split_pairs"),
                              pair_counts(labels, sub_truth)):
            totals[key] += count
        for key in ("groups", "people", "mixed_groups"):
            totals[key] += r[key]
        totals["merged"] += r["people_merged"] * r["people"]
        totals["pure"] += r["purity"] * len(idx)
        totals["sets"] += 1
        sightings += len(idx)
    return {"groups": totals["groups"], "people": totals["people"], "mixed_groups": totals["mixed_groups"],
            "merge_rate": totals["merged_pairs"] / max(totals["pairs_diff"], 1),
            "split_rate": totals["split_pairs"] / max(totals["pairs_same"], 1),
            "people_merged": totals["merged"] / max(totals["people"], 1),
            "purity": totals["pure"] / max(sightings, 1), "sets": totals["sets"]}


def speed(data: Path, model_dir: Path | None, config) -> dict:
    """The four clips through the live loop, collection off and on: fps over the loop's wall time
    (every clip's frames together) and process CPU per frame (all threads, the writer's too)."""
    from benchmarks.pipelines import run_fast
    from realtime.config import apply_overrides, load_config
    from realtime.gallery import open_gallery
    from realtime.recognizer import Recognizer
    out = {}
    for on in (False, True):
        recognizer = Recognizer(model_dir, apply_overrides(load_config(config), {"recognition.collect_unknown": on}))
        with tempfile.TemporaryDirectory() as tmp:
            with open_gallery(Path(tmp) / "g.db", recognizer.encoder.model_id, watch=True) as gallery:
                runs = [run_fast(clip, recognizer, gallery, 100000) for clip in clips(data)]
                groups = len(gallery.unknowns.groups())
        frames = sum(r.frames for r in runs)
        matching = [t for r in runs for t in r.stages["match"]]     # matching and tracking: where the collector runs
        out["on" if on else "off"] = {"frames": frames, "fps": round(frames / sum(r.wall for r in runs), 1),
                                      "cpu_ms_per_frame": round(1000 * sum(r.cpu for r in runs) / frames, 2),
                                      "match_track_ms_mean": round(1000 * float(np.mean(matching)), 3),
                                      "groups": groups}
    return out


def measure(data: Path, model_dir: Path | None, config, people_spec: str, photos: int, seed: int) -> dict:
    from realtime.recognizer import Recognizer
    from realtime.unknowns.grouping import cluster, group_threshold, track_embedding
    recognizer = Recognizer(model_dir, config)
    policy = recognizer.thresholds
    started = time.perf_counter()
    faces = encode_people(recognizer, data, read_people(people_spec, data), photos)
    log.info("%d photos of %d people encoded in %.0f s", len(faces.people), len(set(faces.people)),
             time.perf_counter() - started)
    tracks = [e[None, :] for e in faces.embeddings]
    live = lambda n: group_threshold(policy, n)  # noqa: E731  (the live program's threshold for n groups)
    chosen = group_threshold(policy, len(set(faces.people)))
    order = np.random.default_rng(seed).permutation(len(tracks))
    rows = [dict(in_sets(tracks, faces.people, DESIGN_PEOPLE, live, seed),
                 rule=f"live rule, sets of {DESIGN_PEOPLE} people", threshold=group_threshold(policy, DESIGN_PEOPLE))]
    rows += [dict(score(cluster(tracks, chosen, linkage), faces.people), rule=f"all at once, batch, {linkage} linkage",
                  threshold=chosen) for linkage in ("average", "single", "complete")]
    rows.append(dict(score(online(tracks, live, order), faces.people), rule="all at once, live rule", threshold=chosen))
    sweep = [dict(score(cluster(tracks, t), faces.people), rule="all at once, batch, average (sweep)", threshold=t)
             for t in SWEEP]
    clip_views, clip_truth, clip_sharp = encode_clips(recognizer, data)
    clip_tracks = [track_embedding(v)[None, :] for v in clip_views]
    twice = clip_tracks + clip_tracks
    clip_row = dict(score(online(twice, live, range(len(twice))), clip_truth * 2),
                    rule="four clips played twice, live rule", threshold=chosen, tracks=len(twice))
    return {"model": str(model_dir or "models"), "people_from": people_spec, "photos": len(faces.people),
            "threshold": chosen, "pair_threshold": policy.pair(), "rows": rows, "sweep": sweep, "clips": clip_row,
            "sharpness_median": {"lfw": float(np.median(faces.sharpness)), "clips": float(np.median(clip_sharp))},
            "speed": speed(data, model_dir, config)}


def table(result: dict) -> str:
    lines = [f"people from {result['people_from']}: {result['photos']} photos, each one sighting; "
             f"threshold {result['threshold']:.3f} (open-set point; the 1:1 point is {result['pair_threshold']:.3f})",
             "", "| rule | threshold | groups | people | groups mixing people | merge rate | people merged | split rate | purity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"] + result["sweep"] + [result["clips"]]:
        lines.append(f"| {r['rule']} | {r['threshold']:.3f} | {r['groups']} | {r['people']} | {r['mixed_groups']} | {r['merge_rate']:.5f} | "
                     f"{r['people_merged']:.3f} | {r['split_rate']:.3f} | {r['purity']:.4f} |")
    s = result["sharpness_median"]
    lines += ["", f"median sharpness of aligned crops (Laplacian variance at 64 px): LFW {s['lfw']:.0f}, "
              f"clips {s['clips']:.0f}", "", "| the four clips, headless | frames | fps | CPU ms per frame | match + track (+ collect) ms, mean | groups kept |",
              "|---|---|---|---|---|---|"]
    for key, label in (("off", "collection off (the default)"), ("on", "--collect-unknown")):
        r = result["speed"][key]
        lines.append(f"| {label} | {r['frames']} | {r['fps']} | {r['cpu_ms_per_frame']} | {r['match_track_ms_mean']} | "
                     f"{r['groups']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unknowns", description=__doc__.split("\n\n")[0])
    data_flag(parser)
    parser.add_argument("--model", type=Path, default=None, help="encoder folder (default: the shipped models/)")
    parser.add_argument("--config", default=None, help="settings file (default config.yaml)")
    parser.add_argument("--people", default="devtest", help="devtest, or a file of LFW names (one a line)")
    parser.add_argument("--photos", type=int, default=10, help="photos per person at most (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="the live rule's arrival order")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        data = data_folder(args.data, ("lfw",))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = measure(data, args.model, args.config, args.people, args.photos, args.seed)
    print(table(result))
    if args.json is not None:
        from realtime.outputs import write_text_atomic
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n", "--json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
