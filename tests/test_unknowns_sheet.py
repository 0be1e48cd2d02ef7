"""A group's contact sheet: thumbnails in a grid under a title, written as a PNG by temp file and rename."""
import os

import cv2
import numpy as np
import pytest

from realtime.errors import UserError
from realtime.unknowns.sheet import GAP, SIDE, contact_sheet, write_png


def thumb(color, shape=(96, 96)):
    image = np.zeros((*shape, 3), np.uint8)
    image[:] = color
    return image


def test_thumbnails_are_laid_out_in_rows_under_the_title():
    red, green = (255, 0, 0), (0, 255, 0)      # RGB
    sheet = contact_sheet([thumb(red)] * 3 + [thumb(green)] * 4, "unknown #3: 7 views", ["10:02:03"] * 7, columns=3)
    rows = 3
    assert sheet.shape[1] >= GAP + 3 * (SIDE + GAP)
    assert sheet.shape[0] > rows * SIDE
    # Found by colour (BGR): three red squares on the first row, the four green ones below them.
    reds = np.argwhere((sheet[:, :, 2] == 255) & (sheet[:, :, 1] == 0) & (sheet[:, :, 0] == 0))
    greens = np.argwhere((sheet[:, :, 1] == 255) & (sheet[:, :, 2] == 0) & (sheet[:, :, 0] == 0))
    assert len(reds) == 3 * SIDE * SIDE and len(greens) == 4 * SIDE * SIDE
    assert greens[:, 0].min() > reds[:, 0].max()
    assert reds[:, 0].min() > GAP                          # below the title


def test_a_thumbnail_of_another_shape_is_letterboxed_not_stretched():
    wide = thumb((0, 0, 255), shape=(50, 100))
    sheet = contact_sheet([wide], "")
    blue = np.argwhere(sheet[:, :, 0] == 255)
    height = blue[:, 0].max() - blue[:, 0].min() + 1
    width = blue[:, 1].max() - blue[:, 1].min() + 1
    assert (width, height) == (SIDE, SIDE // 2)


def test_the_png_is_written_whole_by_rename(tmp_path):
    sheet = contact_sheet([thumb((1, 2, 3))], "Zoë")
    out = tmp_path / "sheet.png"
    out.write_bytes(b"old")
    write_png(out, sheet)
    assert np.array_equal(cv2.imread(str(out)), sheet)
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]     # no temp file left
    with pytest.raises(UserError, match="does not exist"):
        write_png(tmp_path / "missing" / "x.png", sheet)
    assert os.listdir(tmp_path) == ["sheet.png"]
