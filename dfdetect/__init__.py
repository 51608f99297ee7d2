"""dfdetect: deepfake detection toolkit (index → extract → fit → calibrate → export → scan → evaluate)."""

__version__ = "0.1.0"
