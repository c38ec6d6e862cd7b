"""Customer segments: RFM features (``models.features.segments``) → KMeans (ONNX) → names."""
