"""What the networks learn from and read.

Motion capture, synthetic scenes, image and bag datasets, the 2D teachers and their cache, the
image codec, the student's training pool. Imports only mp3d.common.
"""
