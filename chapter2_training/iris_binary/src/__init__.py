"""iris_binary: trains one-against-rest SVCs `iris_binary_<species>`, exports ONNX, registers."""
