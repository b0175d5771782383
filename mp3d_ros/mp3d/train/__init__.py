"""Training of the prior, P and the student.

The pose prior from motion capture, P on synthetic scenes, the image student by cross-modal
alignment; their losses, logs and packaging.
"""
