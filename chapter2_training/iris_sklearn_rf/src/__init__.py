"""iris_sklearn_rf: trains `iris_rf` (StandardScaler → forest), exports ONNX, registers it."""
