"""From an image to people in 3D.

The Estimator, its ONNX export and backends, tracking, depth-camera roots, drawings.
"""
