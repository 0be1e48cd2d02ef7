"""realtime.keys: the window's keys and typing a name (a pure state machine)."""
import pytest

from realtime.keys import KeyState, handle_key, parse_key_script


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
