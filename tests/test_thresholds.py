"""realtime.thresholds: where the match threshold comes from, its range, and the + key's cap."""
import pytest

from realtime.errors import UserError
from realtime.thresholds import KEY_CAP, ThresholdPolicy, check_threshold, key_cap, step_threshold


def test_threshold_policy_order_and_refusals():
    from realtime.config import RecognitionConfig
    info = {"threshold": 0.7}
    assert ThresholdPolicy(info, RecognitionConfig()).for_gallery() == 0.7
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.9)).for_gallery() == 0.9
    assert ThresholdPolicy(info, RecognitionConfig(threshold=0.9), 0.5).for_gallery() == 0.5
    for bad in (float("inf"), float("nan"), 2.01, 0.0, -0.1, 10**400):
        with pytest.raises(UserError, match="--threshold"):
            ThresholdPolicy(info, RecognitionConfig(), bad)
    with pytest.raises(UserError, match="recognition.threshold"):
        ThresholdPolicy(info, RecognitionConfig(threshold=3.0))
    with pytest.raises(UserError, match="threshold must be"):
        check_threshold("0.5", "x")


def test_plus_key_is_capped_below_accepting_everyone():
    cap = key_cap(0.726)
    assert cap == pytest.approx(KEY_CAP) and cap < 2.0
    t = 0.726
    for _ in range(1000):
        t = step_threshold(t, 0.02, cap)
    assert t == cap
    assert step_threshold(0.02, -0.5, cap) > 0
    assert key_cap(1.8) == 1.8  # a configured threshold above the cap is not lowered by +
