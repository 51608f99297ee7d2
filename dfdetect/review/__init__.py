"""People in the loop: the review queue a scan leaves for a person, the verdicts they return, and the
provenance chain that ties a score to the model, training run and data behind it.

- `queue`: scan results → queue.csv + a self-contained index.html gallery with a verdict form.
- `verdicts`: verdicts.csv from the gallery → a verdict log and a labelled index for the next fit.
- `provenance`: record → model file → contract → training run → crops → index, each link checked.
"""
