"""realtime.errors: what reaches a user is one short line."""
from realtime.errors import run_command, shorten


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
