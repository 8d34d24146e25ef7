"""Exporters of a trained model: the edge model file, ONNX and a dependency-free C runtime."""
