"""`mp3d bench`: the student's speed end to end (JPEG bytes in, 3D people out) per backend and
device, on real frames and on composites holding 1 to 16 people, against the top-down peer timed
on the same frames in the same run.

    mp3d bench [--json] [--frames 40] [--counts 1 2 4 8 16] [--threads T] [--no-peer]
    python -m mp3d.eval.bench ...                       (the same)

Frames: the bundled clip (mp3d_ros/data/demo_clip: 60 JPEG frames of pedestrians, 768x576)
resized to 640x480 and encoded once as JPEG (quality 90). Each timed call decodes the JPEG bytes
(cv2.imdecode), converts them to RGB and estimates, so the latency is end to end, decoding
included. The peer is timed the same way on the same files.

Composites (:func:`composite`): whole people cut from the clip (the student's detections with all
17 joints seen, person score >= CUT_MIN_SCORE, whose padded box touches no other person), each with
a soft mask (its difference from the clip's median background), pasted on a mid-grey canvas in a
grid at PERSON_HEIGHT_PX tall (less where a cell is smaller). Grey, not the clip's background:
there the student scores people pasted out of perspective low (measured: 4 of 8 found), which
would measure the scene rather than the count. The report says how many people each side found
per count (ours; the peer's boxes and, of those, the poses BlazePose returned).

Per backend and device (mp3d.infer.estimator.available_backends(): torch and ONNX Runtime on the
CPU; torch, ONNX Runtime CUDA and TensorRT on CUDA where present, there at batch 1 and 8), each in a
helper process of its own (``python -m mp3d.eval.bench backend JOB.json``) after its ONNX export or
TensorRT engines are cached: latency p50 and p95 per call (ms; a call at batch 8 decodes and
estimates 8 images), frames per second, peak memory (CPU: the helper's resident-set high-water
mark minus its RSS before the Estimator was built; CUDA: device memory, torch's
max_memory_allocated or, for ONNX Runtime, the drop in free memory). "Ours" is the fastest CPU
backend on the real frames. Slopes: least-squares ms per person of the p50s against the number
of people. The peer (needs .venv-teacher): YOLO11n-pose boxes, then BlazePose on a crop per
person (mp3d.data.teachers.blazepose.TopDownBlazePoseTeacher), run there as ``python -m
mp3d.eval.bench peer JOB.json``. Targets (TARGETS) are printed with PASS or MISS. Timings on a
loaded machine are worth little: the report gives the 1-minute load average at the start and the
end.

--json: the last stdout line is one JSON object: ours_backend, ours_p50_ms, peer_p50_ms,
ratio_at_8, ours_ms_per_person, peer_ms_per_person, backends {name: {backend, device, batch,
p50_ms, p95_ms, fps, peak_mem_mb, people_per_frame, per_count {n: p50_ms}, found_per_count {n:
mean people}}}, peer (None without it, else p50_ms, p95_ms, people_per_frame, per_count,
boxes_per_count, found_per_count), ratio_per_count, decode_p50_ms, parameters, gmac, targets,
machine, frames, counts, size.
"""
