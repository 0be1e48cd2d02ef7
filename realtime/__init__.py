"""Real-time face recognition: capture, Haar detection, TFLite encoding, an SQLite gallery, matching.

This package never imports TensorFlow or ``training``: the live program runs the exported
``encoder.tflite`` so it starts fast. ``training`` imports the preprocessing from here
(``realtime.detection``, ``realtime.crops``) so a crop is encoded exactly as it was trained.
"""
