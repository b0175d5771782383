"""What every layer shares.

The skeleton table, camera geometry, checkpoint files, devices and where the shipped models live.
Imports nothing else of mp3d.
"""
