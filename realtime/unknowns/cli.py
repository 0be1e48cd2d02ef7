"""``python -m realtime unknowns``: the unknown faces kept by ``--collect-unknown``, grouped by
person: list them, look at a group, name it (its views become that person's samples), forget them."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from realtime.errors import UserError, counted, setup_logging
from realtime.unknowns.sheet import when

log = logging.getLogger("realtime")

LIST_FIELDS = ("id", "views", "tracks", "first_seen", "last_seen", "sources")


def group_row(group) -> dict:
    return {"id": group.id, "views": group.views, "tracks": group.tracks, "first_seen": when(group.first_seen),
            "last_seen": when(group.last_seen), "sources": list(group.sources)}


def parser() -> argparse.ArgumentParser:
    from realtime.__main__ import _common
    p = argparse.ArgumentParser(
        prog="python -m realtime unknowns",
        description="Unknown faces kept by the live program with --collect-unknown (recognition.collect_unknown), "
                    "grouped by person. Without an action: list the groups (CSV with a header: "
                    f"{','.join(LIST_FIELDS)}; --json for JSON lines).")
    _common(p)
    p.add_argument("--json", action="store_true", help="list as JSON lines (sources as a list)")
    sub = p.add_subparsers(dest="action", metavar="list | show | name | forget")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help_text, description=help_text, argument_default=argparse.SUPPRESS)
        _common(a)
        return a

    a = action("list", "list the groups (the default action)")
    a.add_argument("--json", action="store_true", help="JSON lines instead of CSV")
    a = action("show", "write a group's contact sheet: the thumbnails of its views, best first, as a PNG")
    a.add_argument("id", type=int, help="the group's id, as the list gives it")
    a.add_argument("-o", "--out", metavar="FILE.png", default=None, help="where to write it (default: unknown-ID.png here)")
    a = action("name", "enroll a group's best views as a person (added to them if they exist) and remove the "
                       "group, in one transaction")
    a.add_argument("id", type=int, help="the group's id, as the list gives it")
    a.add_argument("name", help="the person's name (any text, at most 64 characters)")
    a = action("forget", "remove groups and their views: by id, all of them, or those not seen for some days")
    a.add_argument("ids", type=int, nargs="*", metavar="ID", default=[], help="the groups' ids")
    a.add_argument("--all", action="store_true", default=False, help="every group")
    a.add_argument("--older-than", type=float, metavar="DAYS", default=None, help="the groups last seen more than DAYS days ago")
    return p


def unknowns_main(argv: Sequence[str] | None) -> int:
    from realtime.__main__ import _gallery, _load
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    action = args.action or "list"
    if action == "forget":
        _check_forget(args)
    config = _load(args)
    if action == "name":
        from realtime.gallery import check_name
        name = check_name(args.name)                 # refused before anything slow
        from realtime.__main__ import _recognizer
        recognizer = _recognizer(config)
        with _gallery(config, recognizer.encoder.model_id, create=False) as gallery:
            views, count = gallery.unknowns.name(args.id, name, config.unknowns.name_views)
        print(f"named unknown group {args.id} {name}: {views} views enrolled, {count} samples in total")
        return 0
    with _gallery(config, None, create=False) as gallery:
        unknowns = gallery.unknowns
        if action == "list":
            return _list(unknowns, args.json)
        if action == "show":
            return _show(unknowns, args.id, args.out or f"unknown-{args.id}.png", gallery)
        count = unknowns.forget(args.ids, everything=args.all,
                                older_than=None if args.older_than is None else args.older_than * 86400)
    print(f"forgot {counted(count, 'unknown group')}")
    return 0


def _check_forget(args) -> None:
    chosen = [bool(args.ids), args.all, args.older_than is not None]
    if sum(chosen) != 1:
        raise UserError("unknowns forget takes group ids, --all or --older-than DAYS: one of the three")
    days = args.older_than
    if days is not None and not (days > 0 and days < 1e6):
        raise UserError(f"--older-than must be a number of days above 0, got {days}")


def _list(unknowns, as_json: bool) -> int:
    from realtime.__main__ import _row_printer
    from realtime.names import printable
    groups = unknowns.groups()
    if not groups:
        log.info("no unknown faces kept (the live program keeps them with --collect-unknown)")
    write = _row_printer(as_json, LIST_FIELDS, lambda row: [
        row["id"], row["views"], row["tracks"], row["first_seen"], row["last_seen"],
        printable("; ".join(row["sources"]))])
    for group in groups:
        write(group_row(group))
    return 0


def _show(unknowns, group_id: int, out: str, gallery) -> int:
    from realtime.outputs import check_outputs_distinct
    from realtime.unknowns.sheet import group_sheet, write_png
    if isinstance(getattr(gallery, "path", None), Path):
        check_outputs_distinct({"--out": out}, {"the gallery": gallery.path})
    sheet, shown = group_sheet(unknowns, group_id)
    path = write_png(out, sheet, "--out")
    print(f"wrote {path}: {shown} views of unknown group {group_id}")
    return 0
