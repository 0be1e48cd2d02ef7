"""Speed benchmark of the live loop: ``python -m benchmarks``.

Builds its inputs from ``$FACES_DATA`` (synthetic 640x480 / 1280x720 videos with 0, 1 and 3
moving faces pasted from the ``videos/`` clips, a celebrity5 photo video, galleries of 10 / 1,000
/ 100,000 samples), runs the fast loop (``realtime.App`` with the shipped speed switches) and the
naive baseline (the seed's way) on the same inputs in the same run, and writes one table
(markdown and JSON) with per-stage times, fps, latency, speed-ups, match times, an ablation of
each switch and accuracy on the celebrity5 video and the clips.
"""
