"""The `mp3d` command: one entry point (`mp3d.cli.main.main`), one module per command group.

Each module here only builds its parser and calls into the layers below (train, eval, infer,
data); the ROS package adds its own commands (play, replay) through `main(extra_modules=...)`.
"""
