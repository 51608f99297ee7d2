"""Training: fakes synthesised from real faces, the model, and the fitting loop."""
