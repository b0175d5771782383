"""Person maps: encode exact people into maps, decode them back (round trip), and peak NMS."""

import numpy as np
import torch
from mp3d.common import skeleton as sk
from mp3d.common.geometry import Intrinsics, project
from mp3d.model.personmaps import MapConfig, decode_maps, encode_targets, find_peaks
from mp3d.model.prior import PosePrior, PriorConfig

W, H = 384, 288
CFG = MapConfig()


def yaw(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_encode_then_decode_recovers_every_person():
    torch.manual_seed(0)
    prior = PosePrior(PriorConfig())
    prior.set_statistics(torch.tensor(sk.REST_POSE, dtype=torch.float32)[None])
    for p in prior.decoder.net[-1].parameters():  # a decoder whose output depends on z
        torch.nn.init.normal_(p, std=0.05)
    intr = [Intrinsics(300.0, 300.0, 190.0, 145.0, W, H), Intrinsics(420.0, 420.0, 191.5, 143.5,
                                                                       W, H)]
    roots = [np.array([[-1.5, 0.3, 4.0], [0.2, 0.5, 6.5], [1.4, 0.1, 3.2]]),
             np.array([[0.0, 0.4, 2.5], [-2.0, 0.6, 9.0], [2.5, 0.2, 7.0]])]
    B, P = 2, 3
    z = torch.randn(B, P, 32)
    with torch.no_grad():
        canon = prior.decoder(z).double().numpy()
    rot = np.stack([[yaw(a) for a in (0.3, 2.0, -1.0)], [yaw(a) for a in (1.0, -2.5, 0.0)]])
    rel = np.einsum("bpij,bpkj->bpki", rot, canon)
    joints = rel + np.stack(roots)[:, :, None]
    root2d = np.stack([project(np.stack(roots)[b], intr[b]) for b in range(B)])
    fx = np.array([i.fx for i in intr])
    t = encode_targets(root2d, np.stack(roots)[..., 2], rot, rel, np.full((B, P), 80.0),
                       np.ones((B, P), bool), fx, W, H, CFG)
    assert bool(t.mask.all())
    gh, gw = t.centre.shape[-2:]
    # Exact maps: centre logits from the target, codes written at each person's cell.
    # Code features hold (z, rot6d) as they are; the code head splits them.
    maps = {"centre": torch.logit(t.centre.clamp(1e-6, 1 - 1e-6)),
            "feat": torch.zeros(B, 32 + 6, gh, gw),
            "depth": torch.zeros(B, 1, gh, gw), "offset": torch.zeros(B, 2, gh, gw)}
    for b in range(B):
        for p in range(P):
            i, j = divmod(int(t.index[b, p]), gw)
            maps["feat"][b, :32, i, j] = z[b, p]
            maps["feat"][b, 32:, i, j] = t.rot6d[b, p]
            maps["depth"][b, 0, i, j] = t.depth[b, p]
            maps["offset"][b, :, i, j] = t.offset[b, p]
    intr_arr = np.array([[i.fx, i.fy, i.cx, i.cy] for i in intr])
    out = decode_maps(maps, intr_arr, prior.decoder, CFG, lambda f: (f[..., :32], f[..., 32:],
                                                                 f[..., :17] * 0))
    for b in range(B):
        assert len(out[b]) == P, "every person is recovered, nobody extra"
        order = [int(np.argmin(np.linalg.norm(root2d[b] - r, axis=1))) for r in out[b].root2d]
        assert sorted(order) == list(range(P))
        np.testing.assert_allclose(out[b].root2d, root2d[b, order], atol=1e-3)  # px
        np.testing.assert_allclose(out[b].depth, np.stack(roots)[b, order, 2], rtol=1e-5)
        np.testing.assert_allclose(out[b].joints_cam, joints[b, order], atol=1e-4)  # 0.1 mm
        np.testing.assert_allclose(out[b].keypoints_2d,
                                   project(joints[b, order], intr[b]), atol=1e-2)
        np.testing.assert_allclose(out[b].score, 1.0, atol=1e-5)


def test_peaks_nms_threshold_and_cap():
    prob = torch.zeros(1, 1, 10, 12)
    prob[0, 0, 2, 3] = 0.9
    prob[0, 0, 2, 4] = 0.8   # suppressed by its stronger neighbour
    prob[0, 0, 7, 9] = 0.5
    prob[0, 0, 5, 5] = 0.2   # below threshold
    scores, idx = find_peaks(prob, CFG)[0]
    assert scores.tolist() == [0.8999999761581421, 0.5] and idx.tolist() == [2 * 12 + 3, 7 * 12 + 9]
    one = MapConfig(max_people=1)
    assert len(find_peaks(prob, one)[0][0]) == 1


def test_people_outside_the_image_get_no_cell():
    t = encode_targets(np.array([[[-50.0, 10.0], [100.0, 100.0]]]), np.array([[3.0, -1.0]]),
                       np.tile(np.eye(3), (1, 2, 1, 1)), np.zeros((1, 2, 17, 3)),
                       np.full((1, 2), 50.0), np.ones((1, 2), bool), np.array([300.0]), W, H, CFG)
    assert t.mask.tolist() == [[False, False]]  # left of the image; behind the camera
    assert float(t.centre.max()) == 0.0
