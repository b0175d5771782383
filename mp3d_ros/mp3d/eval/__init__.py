"""How good and how fast.

Pose metrics, the supervised lifting peer, the lifting, image and multi-view evaluations,
benchmarks.
"""
