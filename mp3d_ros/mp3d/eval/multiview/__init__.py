"""Multi-view pseudo ground truth from a 2D teacher: calibration readers, lens distortion, DLT
triangulation, cross-view association with a per-limb left/right vote, bundle adjustment.

Conventions. World frame: the calibration's, metres. Cameras follow OpenCV: a world point X is
``R @ X + t`` in the camera optical frame (x right, y down, z forward); pixel coordinates have
integer values at pixel centres. Lens distortion is OpenCV's (k1, k2, p1, p2, k3). "Undistorted
pixels" are the pinhole pixels of K with the distortion removed: all the geometry below (projection,
triangulation, bundle adjustment) works in them; `undistort_points` brings raw detections there.

Calibration files (`read_calibration` picks by name):

- Qualisys ``.qca.txt`` (`read_qca`), converted as Pose2Sim does: per camera C = the transform's
  x, y, z (camera centre, world mm), M = its r11..r33 (rows; world to Qualisys camera); OpenCV
  R = diag(1, -1, -1) M, t = -R C / 1000; K = focal lengths and centre point / 64 (minus the
  video field of view's left/top). The distortion coefficients are taken undivided (Pose2Sim
  divides them by 64 too; a separate fit of the same cameras, Calib_scene.toml, agrees with the
  undivided values).
- Pose2Sim TOML (`read_pose2sim_toml`): per camera ``matrix`` (K), ``distortions`` (k1 k2 p1 p2),
  ``rotation`` (Rodrigues, world to camera), ``translation`` (metres), ``size`` (width, height).
- YAML (`read_yaml_calibration`, `write_yaml_calibration`), for your own rig::

      cameras:
        cam01:
          size: [1088, 1920]              # width, height (px)
          K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
          dist: [k1, k2, p1, p2, k3]      # OpenCV order, 0-5 numbers (missing ones are 0)
          R: [[r11, r12, r13], ...]       # world to camera; or rvec: [rx, ry, rz] (Rodrigues)
          t: [tx, ty, tz]                 # metres: x_cam = R x_world + t

People. The teacher gives COCO-17 keypoints per view (`skeleton.COCO_NAMES`). `associate` groups
one detection per view into people by two-view triangulation consistency; `lr_vote` decides, per
limb group (face, arms, legs) and per view, whether the teacher swapped left and right (it does in
some back views), trusting views that see the person's front; `triangulate_robust` drops views
whose reprojection error is too high and rejects joints left with fewer than two views. A person's
3D joints come out as COCO-17 points and as the 17 MuPoTS joints (`skeleton.coco_to_mupots` on 3D
points: head_top and spine have no COCO source and stay NaN).
"""
