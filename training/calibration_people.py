"""Choose the people an encoder's threshold is calibrated on, and write their names (one a line).

The open-set curve (``training.calibrate``) needs people the encoder never trained on: some with
several photos (enrolled, or strangers whose every photo asks) and many with one photo (gallery
fillers up to 1,000 people and more, or strangers). The list is drawn once, seeded, from the
people of a ``<person>/<photo>`` folder that no exclusion list names, and ships beside the recipe
(``models/calibration-people.txt``), so every retrain and every ``--init models`` fine-tune is
calibrated on the same people, and training leaves them out by name.

    python -m training.calibration_people --data $FACES_DATA/lfw \\
        --exclude-people $FACES_DATA/lfw_pairs/pairsDevTest.txt models/celebrity5-in-lfw.txt \\
        --out models/calibration-people.txt
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from realtime.errors import UserError, run_command, setup_logging
from realtime.outputs import check_outputs_distinct, write_text_atomic
from training.data import scan_people
from training.lfw import read_people_file

log = logging.getLogger(__name__)

SEVERAL = 300        # people with 2..MAX_PHOTOS photos: half enrolled, half strangers
SINGLE = 2000        # people with one photo: half gallery fillers, half strangers
MAX_PHOTOS = 20      # a person with hundreds of photos would be most of the strangers' photos


def choose(counts: dict[str, int], excluded: set[str], several: int = SEVERAL, single: int = SINGLE,
           max_photos: int = MAX_PHOTOS, seed: int = 1) -> list[str]:
    """``several`` people with 2..``max_photos`` photos and ``single`` with one, none of ``excluded``,
    drawn at random (seeded), sorted."""
    rng = np.random.default_rng(seed)
    picked = []
    # Training learns from people with several photos (they make the triplets): at most half of
    # them are taken. One-photo people are only ever negatives there.
    for wanted, fits, share in ((several, lambda c: 2 <= c <= max_photos, 0.5), (single, lambda c: c == 1, 1.0)):
        pool = sorted(p for p, c in counts.items() if fits(c) and p not in excluded)
        if wanted > int(len(pool) * share):
            raise UserError(f"asked for {wanted} calibration people, but only {len(pool)} fit"
                            + (": take at most half of them, so training keeps the rest" if share < 1 else ""))
        picked += rng.choice(pool, size=wanted, replace=False).tolist()
    return sorted(picked)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.calibration_people", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a folder of <person>/<photo> (e.g. LFW)")
    p.add_argument("--exclude-people", nargs="+", action="extend", default=[], metavar="FILE",
                   help="LFW pairs files or name lists: people never chosen (e.g. the DevTest people)")
    p.add_argument("--several", type=int, default=SEVERAL, help=f"people with several photos (default {SEVERAL})")
    p.add_argument("--single", type=int, default=SINGLE, help=f"people with one photo (default {SINGLE})")
    p.add_argument("--max-photos", type=int, default=MAX_PHOTOS,
                   help=f"leave out people with more photos than this (default {MAX_PHOTOS})")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="the names file to write")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    excluded: set[str] = set()
    for f in args.exclude_people:
        excluded |= read_people_file(Path(f).expanduser().resolve())
    out = Path(args.out).expanduser().resolve()
    check_outputs_distinct([("--out", out)], [(f"--exclude-people {f}", Path(f).resolve()) for f in args.exclude_people])
    people, _ = scan_people(Path(args.data).expanduser())
    names = choose({p: len(photos) for p, photos in people.items()}, excluded, args.several, args.single,
                   args.max_photos, args.seed)
    header = [f"# People never trained on: the open-set threshold is calibrated on them ({args.several} with 2-"
              f"{args.max_photos} photos, {args.single} with one; seed {args.seed}). Made by",
              "# python -m training.calibration_people --data <lfw> --exclude-people "
              + " ".join(Path(f).name for f in args.exclude_people) + f" --out {out.name}"]
    write_text_atomic(out, "\n".join(header + names) + "\n", "--out")
    log.info("%d calibration people written to %s", len(names), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
