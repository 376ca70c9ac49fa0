"""Data, estimator, evaluation and ONNX export: no HTTP, no registry."""
