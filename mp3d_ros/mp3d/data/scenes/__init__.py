"""Synthetic multi-person scenes for training the pose-map network P, with exact 3D/2D labels.

A scene is one pinhole camera (robot height or elevated, pitched, slightly rolled) looking at 1..8
people standing on one ground plane, each a pose from a pose bank, scaled, maybe mirrored, turned
about the vertical by a random yaw. `sample_scenes` returns the exact labels (3D joints in the
camera optical frame, 2D projections, visibility, occlusion by closer people) and what a real 2D
teacher (YOLO11-pose, COCO-17) would have said about the image: corrupted keypoints with
confidences, missed joints and people, rare left/right swaps and false people. P's input is those
teacher keypoints rendered by `mp3d.model.heatmaps.render_keypoint_heatmaps`, exactly as the real
teacher's keypoints will be.

Frames. World: gravity-aligned, x right, y DOWN, z forward (horizontal), ground plane y = 0, the
camera above the origin at y = -height. Camera: optical frame (x right, y down, z forward), pitched
down by `pitch` about its x axis, then rolled about its optical axis. Canonical pose: root-relative,
y down, the person facing -z (toward a camera looking along +z), their right side at -x, exactly as
`skeleton.REST_POSE`. Motion-capture poses in the pose-prior frame (+y up, facing +z, +x the
person's left; mp3d.data.mocap.retarget) are turned into this frame by `canonical_from_y_up`.

Teacher corruption model and how it was fitted: see `TeacherNoise`.
"""
