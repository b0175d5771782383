"""Motion capture for the pose prior: BVH reading, forward kinematics, retargeting, pose datasets.

Modules (import them directly; this package imports nothing so `mp3d --help` stays fast):
  bvh       read any BVH file into a `BVH` record (hierarchy + motion array)
  fk        vectorised forward kinematics: motion -> global joint positions
  retarget  map a BVH skeleton onto the 17 MuPoTS joints (metres, Y up), canonical orientation
  deepmimic DeepMimic clips (humanoid3d_*.txt): reading, forward kinematics, retargeting
  positions joint-position clips (holosoma's (T, 53, 3) .npy): reading, retargeting
  dataset   BVH files, DeepMimic and joint-position clips, folders -> cached .npz pose dataset
  cli       the `mp3d mocap` subcommand
  bench_fk  timing of parsing and forward kinematics (python -m mp3d.eval.bench.fk FILE.bvh)
"""
