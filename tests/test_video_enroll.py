"""realtime.video_enroll: which frames of a clip give the enrollment samples."""
import numpy as np

from realtime.video_enroll import candidate_frames, main_person, spread


def test_sample_choice_is_spread_and_keeps_the_main_person():
    frames = candidate_frames(200, 5)
    assert len(frames) == 24 and frames[0] == 0 and frames[-1] == 198 and frames == sorted(set(frames))
    assert candidate_frames(1, 5) == [0] and candidate_frames(0, 5) == []
    assert spread(list(range(10)), 3) == [0, 4, 9] and spread([1, 2], 5) == [1, 2]
    rng = np.random.default_rng(0)
    main = rng.normal(0, 0.05, (8, 4)) + np.array([1, 0, 0, 0])
    other = rng.normal(0, 0.05, (3, 4)) + np.array([0, 1, 0, 0])
    assert main_person(np.vstack([main, other]), 0.7).tolist() == [True] * 8 + [False] * 3
