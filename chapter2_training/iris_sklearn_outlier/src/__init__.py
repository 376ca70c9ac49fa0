"""iris_sklearn_outlier: trains the `iris_ocs` outlier detector, exports ONNX, registers it."""
