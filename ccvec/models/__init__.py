"""Embedding models: torch-free weights reading, ONNX graph building, specs, the registry, inference."""
