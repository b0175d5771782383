"""The networks and the person representation.

The pose prior (a VAE whose decoder only emits skeletons), the pose-map network P, the image
student, and heatmap and person-map encoding and decoding. Imports only mp3d.common.
"""
