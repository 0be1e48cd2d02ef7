"""``python -m training``: see training.train."""
from training.train import cli

raise SystemExit(cli())
