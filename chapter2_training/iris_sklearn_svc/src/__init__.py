"""iris_sklearn_svc: trains `iris_svc` (StandardScaler → SVC), exports ONNX, registers it."""
