"""realtime.keys: the window's keys and typing a name (a pure state machine)."""
import pytest

from realtime.keys import (BACKSPACE, ENTER, ESC, KeyState, from_keysym, from_waitkey, handle_key,
                           parse_key_script)
from realtime.names import MAX_NAME_LENGTH


def press(state, keys):
    """Feed keys (characters or key codes); the final state and every key's action (None: no action)."""
    actions = []
    for k in keys:
        state, a = handle_key(state, ord(k) if isinstance(k, str) else k)
        actions.append(a)
    return state, actions


def kinds(actions):
    return [a.kind if a else None for a in actions]


def test_typing_a_name_and_saving():
    # Z o q, backspace, e-umlaut, space, x, two backspaces, Enter: "Zo\u00eb" is saved
    state, actions = press(KeyState(), ["e", "Z", "o", "q", 8, "\u00eb", " ", "x", 8, 8, 13])
    assert [a.kind for a in actions] == ["start_naming"] + ["edit"] * 9 + ["enroll"]
    assert actions[-1].name == "Zo\u00eb"
    assert state == KeyState()            # back to recognising, nothing left half-typed


def test_escape_cancels_then_quits_and_other_keys():
    state, actions = press(KeyState(), ["e", "a", 27, 27])
    assert kinds(actions)[-2:] == ["cancel", "quit"]
    assert kinds(press(KeyState(), ["q"])[1]) == ["quit"]
    assert kinds(press(KeyState(), [" ", "+", "-", "z", -1])[1]) == ["pause", "threshold_up", "threshold_down", None, None]
    _, a = handle_key(KeyState(naming=True, text="  "), 13)
    assert a.kind == "cancel"            # an empty name saves nothing


def test_keys_prompt_stops_at_the_one_name_limit():
    from realtime.keys import KeyState, handle_key
    state = KeyState(naming=True)
    for _ in range(MAX_NAME_LENGTH + 10):
        state, _ = handle_key(state, ord("a"))
    assert len(state.text) == MAX_NAME_LENGTH


def test_waitkeyex_codes_become_keys_and_modifiers_are_ignored():
    assert [from_waitkey(c) for c in (107, 39, 34, 13, 10, 27, 8)] == [107, 39, 34, ENTER[1], 13, ESC, 8]
    assert from_waitkey(-53) == ord("ë") and from_waitkey(-55) == ord("é")          # Qt's signed Latin-1
    assert from_waitkey(0x1000159) == ord("ř") and from_waitkey(0x100674E) == ord("李")  # Unicode keysyms
    for modifier in (0xFFE1, 0xFFE2, 0xFFE3, 0xFFE5, 0xFFE9, 0xFF51, 0xFFBE, -1):     # Shift, Ctrl, Caps, Alt...
        assert from_waitkey(modifier) is None
    assert from_keysym(0x4B) == ord("K") and from_keysym(0xEB) == ord("ë") and from_keysym(0xFF0D) == 13
    assert from_keysym(0xFF08) in BACKSPACE and from_keysym(0xFFE1) is None


def test_shift_alone_no_longer_types_a_letter():
    """Shift (0xFFE1 from waitKeyEx; 225 once masked by waitKey) then a, n, n is ``ann``, not ``áann``."""
    state, _ = handle_key(KeyState(), ord("e"))
    for code in (0xFFE1, ord("a"), ord("n"), ord("n")):
        key = from_waitkey(code)
        if key is not None:
            state, _ = handle_key(state, key)
    assert state.text == "ann"


def test_key_script():
    assert parse_key_script("e@3,a,ENTER,q@10") == {3: [101], 4: [97], 5: [13], 10: [113]}
    assert parse_key_script("SPACE,COMMA") == {0: [32], 1: [44]}
    with pytest.raises(ValueError):
        parse_key_script("NOPE")


def test_n_types_a_name_for_an_unknown_face_as_e_does():
    state, actions = press(KeyState(), ["n", "Z", "o", "\u00eb", 13])
    assert kinds(actions) == ["start_naming_unknown", "edit", "edit", "edit", "name_unknown"]
    assert actions[-1].name == "Zo\u00eb" and state == KeyState()
    # While typing, n is a letter; Esc cancels; e after it still enrolls.
    state, actions = press(KeyState(), ["n", "n", 27, "e", "a", 13])
    assert kinds(actions) == ["start_naming_unknown", "edit", "cancel", "start_naming", "edit", "enroll"]
