"""Motion capture for the pose prior: BVH reading, forward kinematics, retargeting, pose datasets.

Modules (import them directly; this package imports nothing so `mp3d --help` stays fast):
  bvh       read any BVH file into a `BVH` record (hierarchy + motion array)
  fk        vectorised forward kinematics: motion -> global joint positions
  retarget  map a BVH skeleton onto the 17 MuPoTS joints (metres, Y up), canonical orientation
  dataset   BVH files/folders -> cached .npz pose dataset, and its loader
  cli       the `mp3d mocap` subcommand
  bench_fk  timing of parsing and forward kinematics (python -m mp3d.eval.bench.fk FILE.bvh)
"""
