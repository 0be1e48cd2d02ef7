"""``python -m realtime gallery copy SRC DST``: move a gallery between SQLite and PostgreSQL (a
laptop's file grows into a server shared by many cameras, or a server's gallery comes home).

Every sample is copied as stored, with the identity of its encoder and of its photo, in one transaction; damaged
samples are named and left behind. The destination must be new or empty: a copy never merges
into (or overwrites) people who are already there. Unknown faces kept by ``--collect-unknown`` stay in
the source (a warning counts them): they are a camera's own working set, named or forgotten there.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Sequence

from realtime.errors import UserError, counted, setup_logging
from realtime.gallery.store import common_dim, decode_embedding

log = logging.getLogger("realtime.gallery")


def copy_gallery(src: str, dst: str) -> tuple[int, int]:
    """Copy every person and sample of ``src`` into the empty or new gallery ``dst``; returns
    (people, samples) copied."""
    from realtime.gallery import open_gallery, parse_location, shown_location
    src_loc, dst_loc = (s if isinstance(s, str) else Path(os.path.realpath(s)) for s in map(parse_location, (src, dst)))
    if src_loc == dst_loc:
        raise UserError(f"gallery copy: SRC and DST are the same gallery ({shown_location(src_loc)}): give another DST")
    with open_gallery(src_loc, None, create=False) as source:
        rows = list(source.dump())
        unknown_groups = len(source.unknowns.groups())
    dim = common_dim(blob for _, blob, _, _, _ in rows)
    good = [(name, bytes(blob), model, created, source) for name, blob, model, created, source in rows
            if decode_embedding(blob, dim) is not None]
    if len(good) < len(rows):
        bad = sorted({name for name, blob, _, _, _ in rows if decode_embedding(blob, dim) is None})
        log.warning("%d damaged samples left behind (people: %s)", len(rows) - len(good), ", ".join(map(repr, bad)))
    with open_gallery(dst_loc, None, create=True) as target:
        there = target.people()
        if there:
            raise UserError(f"gallery copy: {shown_location(dst_loc)} already holds {len(there)} people: copy into a new "
                            f"or empty gallery (nothing was copied)")
        if good:
            target.load(good)
    if unknown_groups:
        log.warning("%s of unknown faces (--collect-unknown) not copied: they stay in %s (python -m realtime "
                    "unknowns there names or forgets them)", counted(unknown_groups, "group"), shown_location(src_loc))
    return len({name for name, *_ in good}), len(good)


def gallery_main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m realtime gallery",
        description="Manage gallery stores. `copy SRC DST` copies every person and sample from one gallery to a "
                    "new or empty one; each is a file path, sqlite:///ABSOLUTE/PATH or "
                    "postgresql://USER@HOST:PORT/DATABASE (PG* environment variables fill the rest).")
    sub = p.add_subparsers(dest="action", required=True, metavar="copy")
    c = sub.add_parser("copy", help="copy a gallery (SQLite <-> PostgreSQL)",
                       description="Copy every person and sample of SRC into DST (new or empty), in one transaction.")
    c.add_argument("src", metavar="SRC", help="the gallery to read (left as it is)")
    c.add_argument("dst", metavar="DST", help="a new or empty gallery to write")
    c.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    from realtime.gallery import shown_location
    people, samples = copy_gallery(args.src, args.dst)
    print(f"copied {counted(people, 'person', 'people')}, {counted(samples, 'sample')} from {shown_location(args.src)} to {shown_location(args.dst)}")
    return 0
