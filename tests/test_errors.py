"""realtime.errors: what reaches a user is one short line, with what would steer a terminal spelled out."""
import logging

from realtime.errors import UserError, run_command, setup_logging, shorten


def test_shorten_never_builds_a_huge_repr():
    nested = ["lol"]
    for _ in range(30):
        nested = [nested] * 9  # 9**30 leaves if expanded
    assert len(shorten(nested)) < 200
    assert len(shorten("x" * 10**6)) < 200
    assert "too long" in shorten(10**5000)


def test_run_command_turns_ctrl_c_into_one_line(capsys):
    def main(argv):
        raise KeyboardInterrupt
    assert run_command(main, []) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted") and err.count("\n") == 1


def test_log_lines_and_errors_spell_out_escapes(tmp_path, capsys):
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        setup_logging()
        logging.getLogger("realtime").warning("%s: no face found", "/photos/\x1b]0;owned\x07.jpg")
        logging.getLogger("realtime").warning("%s: cannot be read", "a\nWARNING forged line")
    finally:
        root.handlers = saved
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;owned\\x07.jpg: no face found" in err
    assert "a\\x0aWARNING forged line" in err and err.count("\n") == 2
    from realtime.errors import run_command

    def failing(argv):
        raise UserError(f"photo {tmp_path}/\x1b[31mred.jpg is bad: pass another")
    assert run_command(failing, []) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31mred.jpg" in err
