"""Evaluation (`dfdetect evaluate`): `scoring` turns crops into logits with a checkpoint or an ONNX
file, `summary` turns logits into the numbers of metrics.json, `robustness` degrades crops for the
sweep, `plots` and `report` render report.html and the model card, `cli` ties them together.

The metrics in `metrics` are shared with `dfdetect.calibrate`, so a threshold fitted there and a
rate reported here are computed by the same code."""
