"""Evaluation: the metrics in `metrics` are shared with `dfdetect.calibrate`, so a threshold fitted
there and a rate reported here are computed by the same code."""
