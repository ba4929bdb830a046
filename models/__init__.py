"""Genius models: numba feature kernels, training (scikit-learn to ONNX), evaluation, artifacts, inference."""
