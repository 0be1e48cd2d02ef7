"""Where tests find the shared data ($FACES_DATA) and the encoder (the shipped one, or
$REALTIME_TEST_MODEL), and the marks that skip a test, saying why, when one is missing."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("REALTIME_TEST_MODEL", ROOT / "models"))
DATA = Path(os.environ["FACES_DATA"]) if os.environ.get("FACES_DATA") else None
needs_data = pytest.mark.skipif(DATA is None, reason="FACES_DATA is not set (point it at the shared data folder)")
needs_model = pytest.mark.skipif(not (MODEL / "encoder.tflite").is_file(), reason=f"no trained encoder in {MODEL}")
