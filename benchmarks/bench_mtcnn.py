"""MTCNN detection time: scratchface against facenet-pytorch 2.6.0 on CPU, on the dlib photos.

Usage::

    python benchmarks/bench_mtcnn.py [--data DIR] [--repeat 3] [--facenet-path DIR] [--threads 1,2] [--all]
                                     [--blas-free]

One table per thread count (``--threads``, default 1 and all cores): Numba and
torch get that many threads; inside ``detect_faces`` BLAS runs on one thread
(threadpoolctl), unless ``--blas-free`` restores the behaviour before #16
(OpenBLAS with its own threads beside Numba's), for comparison.

Prints, per photo, the best-of-``repeat`` detection time of scratchface and of
the peer, their ratio (scratchface / peer: <= 1 means scratchface is as fast or
faster), and scratchface's time per stage (pyramid, P-Net, R-Net, O-Net — the
last two include cutting and resizing the crops — and NMS). Numba's compile
(or cache load) time is the first call's extra time, reported apart.

The peer, in order of preference:

1. **facenet-pytorch 2.6.0** itself, if it imports (``pip install --no-deps
   facenet-pytorch==2.6.0``, or ``--facenet-path`` pointing at an unzipped
   wheel). Without torchvision (whose wheel must match torch's version exactly),
   its one torchvision call, ``torchvision.ops.batched_nms``, is replaced by a
   pure-torch greedy NMS; the row is then labelled so. The detector otherwise
   runs unchanged (its own pyramid, crops and nets on torch).
2. Else **torch nets**: scratchface's pipeline with the three nets swapped for
   ``torch.nn.functional`` versions loaded with the same converted weights:
   this times only the network part on torch, and is labelled so.
3. Else scratchface alone.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import types

import numpy as np

from _timing import best_of  # benchmarks/ is the script's folder

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scratchface.detection import mtcnn
from scratchface.detection.mtcnn import detect_faces
from scratchface.models.mtcnn_nets import (
    ONetOutput,
    PNetOutput,
    RNetOutput,
    load_mtcnn_weights,
)

STAGES = ("pyramid", "pnet", "rnet", "onet", "nms")




def _torch_batched_nms(torch):
    """torchvision.ops.batched_nms in plain torch (greedy, IoU > threshold suppressed, no +1)."""
    def nms(boxes, scores, threshold):
        order = torch.argsort(scores, descending=True)
        x1, y1, x2, y2 = boxes.unbind(1)
        area = (x2 - x1) * (y2 - y1)
        suppressed = torch.zeros(len(boxes), dtype=torch.bool)
        keep = []
        for i in order.tolist():
            if suppressed[i]:
                continue
            keep.append(i)
            inter = ((torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
                     * (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0))
            suppressed |= inter / (area[i] + area - inter) > threshold
        return torch.as_tensor(keep, dtype=torch.long)

    def batched_nms(boxes, scores, idxs, threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return nms(boxes + offsets[:, None], scores, threshold)
    return batched_nms


def load_facenet_pytorch(torch, path=None):
    """facenet-pytorch's MTCNN, or None; second value: a label for the table."""
    if path:
        sys.path.insert(0, str(path))
    label = "facenet-pytorch 2.6.0"
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        boxes = types.ModuleType("torchvision.ops.boxes")
        transforms = types.ModuleType("torchvision.transforms")
        functional = types.ModuleType("torchvision.transforms.functional")
        boxes.batched_nms = _torch_batched_nms(torch)
        ops.boxes, tv.ops, tv.transforms, transforms.functional = boxes, ops, transforms, functional
        sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes,
                            "torchvision.transforms": transforms,
                            "torchvision.transforms.functional": functional})
        label += " (torchvision NMS replaced by pure torch)"
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        return None, None
    return MTCNN(keep_all=True, device="cpu"), label


def torch_nets(torch, weights):
    """The three nets in torch.nn.functional, same weights, same outputs as scratchface's."""
    F = torch.nn.functional
    T = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}

    def block(x, net, conv, prelu):
        return F.prelu(F.conv2d(x, T[f"{net}.{conv}.w"], T[f"{net}.{conv}.b"]), T[f"{net}.{prelu}.alpha"])

    def dense(x, net, layer):
        return F.linear(x, T[f"{net}.{layer}.w"].t(), T[f"{net}.{layer}.b"])

    @torch.no_grad()
    def pnet(x, _weights=None):
        x = F.max_pool2d(block(torch.from_numpy(x), "pnet", "conv1", "prelu1"), 2, 2, ceil_mode=True)
        x = block(block(x, "pnet", "conv2", "prelu2"), "pnet", "conv3", "prelu3")
        return PNetOutput(F.softmax(F.conv2d(x, T["pnet.conv4_1.w"], T["pnet.conv4_1.b"]), dim=1).numpy(),
                          F.conv2d(x, T["pnet.conv4_2.w"], T["pnet.conv4_2.b"]).numpy())

    @torch.no_grad()
    def rnet(x, _weights=None):
        x = F.max_pool2d(block(torch.from_numpy(x), "rnet", "conv1", "prelu1"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "rnet", "conv2", "prelu2"), 3, 2, ceil_mode=True)
        x = block(x, "rnet", "conv3", "prelu3").permute(0, 3, 2, 1).reshape(len(x), -1)
        x = F.prelu(dense(x, "rnet", "dense4"), T["rnet.prelu4.alpha"])
        return RNetOutput(F.softmax(dense(x, "rnet", "dense5_1"), dim=1).numpy(), dense(x, "rnet", "dense5_2").numpy())

    @torch.no_grad()
    def onet(x, _weights=None):
        x = F.max_pool2d(block(torch.from_numpy(x), "onet", "conv1", "prelu1"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "onet", "conv2", "prelu2"), 3, 2, ceil_mode=True)
        x = F.max_pool2d(block(x, "onet", "conv3", "prelu3"), 2, 2, ceil_mode=True)
        x = block(x, "onet", "conv4", "prelu4").permute(0, 3, 2, 1).reshape(len(x), -1)
        x = F.prelu(dense(x, "onet", "dense5"), T["onet.prelu5.alpha"])
        return ONetOutput(F.softmax(dense(x, "onet", "dense6_1"), dim=1).numpy(), dense(x, "onet", "dense6_2").numpy(),
                          dense(x, "onet", "dense6_3").numpy())
    return pnet, rnet, onet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SCRATCHFACE_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--facenet-path", default=os.environ.get("FACENET_PYTORCH_PATH"),
                        help="folder holding the facenet_pytorch package (an unzipped 2.6.0 wheel)")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}",
                        help="comma-separated thread counts for torch and Numba, one table each (default 1,<cores>)")
    parser.add_argument("--blas-free", action="store_true",
                        help="leave BLAS its own threads inside detect_faces (the behaviour before #16)")
    parser.add_argument("--all", action="store_true", help="also the three loose photos (bald_guys.jpg is large)")
    args = parser.parse_args(argv)

    from PIL import Image
    folder = pathlib.Path(args.data) / "dlib_faces"
    names = sorted(p.name for p in folder.glob("20*.jpg"))
    if args.all:
        names += ["Tom_Cruise_avp_2014_4.jpg", "bald_guys.jpg", "dogs.jpg"]
    images = {}
    for name in names:
        with Image.open(folder / name) as img:
            images[name] = np.asarray(img.convert("RGB"))

    import numba
    thread_counts = [min(int(t), numba.config.NUMBA_NUM_THREADS) for t in str(args.threads).split(",")]
    try:
        import torch
    except ImportError:
        torch = None
    peer, peer_label = (None, None)
    if torch is not None:
        peer, peer_label = load_facenet_pytorch(torch, args.facenet_path)

    first = next(iter(images.values()))
    start = time.perf_counter()
    detect_faces(first)
    first_call = time.perf_counter() - start
    steady, _ = best_of(lambda: detect_faces(first), 1)
    print(f"scratchface first call {first_call:.2f} s, then {steady:.2f} s: "
          f"compile / cache load ~{max(first_call - steady, 0):.2f} s (excluded below)")
    if args.blas_free:
        import contextlib

        import scratchface.kernels._numba as numba_threads
        numba_threads.blas_single_threaded = lambda: contextlib.nullcontext(False)
        print("--blas-free: BLAS keeps its own threads inside detect_faces")
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info() if i["user_api"] == "blas")
        print(f"BLAS outside detect_faces: {blas}" + ("" if args.blas_free else "; inside: 1 thread (threadpoolctl)"))
    except ImportError:
        print("threadpoolctl not installed: BLAS keeps its own threads inside detect_faces")

    torch_net_fns = torch_nets(torch, load_mtcnn_weights()) if torch is not None and peer is None else None
    if peer is not None:
        peer.detect(first)  # warm-up
        print(f"peer: {peer_label}")
    elif torch_net_fns is not None:
        print("peer: facenet-pytorch not importable; timing scratchface's pipeline with torch.nn.functional nets "
              "(same weights) instead: the network part only")
    else:
        print("peer: none (torch not installed)")

    for threads in thread_counts:
        numba.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        print(f"\n{threads} thread(s): numba {numba.get_num_threads()} ({numba.threading_layer()} layer)"
              + (f", torch {torch.get_num_threads()}" if torch is not None else ""))
        _table(images, peer, torch_net_fns, args.repeat)


def _table(images, peer, torch_net_fns, repeat):
    header = f"{'image':<16}{'size':>10}{'faces':>6}{'scratchface s':>15}{'peer s':>9}{'ratio':>7}   " + \
             "  ".join(f"{s:>7}" for s in STAGES)
    print(header)
    print("-" * len(header))
    totals = {"ours": 0.0, "peer": 0.0, **{s: 0.0 for s in STAGES}}
    for name, image in images.items():
        timings_runs = []

        def ours(image=image, timings_runs=timings_runs):
            timings = {}
            result = detect_faces(image, timings=timings)
            timings_runs.append(timings)
            return result
        t_ours, faces = best_of(ours, repeat)
        stage = min(timings_runs, key=lambda t: sum(t.values()))
        t_peer = float("nan")
        if peer is not None:
            t_peer, _ = best_of(lambda image=image: peer.detect(image), repeat)
        elif torch_net_fns is not None:
            saved = (mtcnn.pnet_forward, mtcnn.rnet_forward, mtcnn.onet_forward)
            mtcnn.pnet_forward, mtcnn.rnet_forward, mtcnn.onet_forward = torch_net_fns
            try:
                t_peer, _ = best_of(lambda image=image: detect_faces(image), repeat)
            finally:
                mtcnn.pnet_forward, mtcnn.rnet_forward, mtcnn.onet_forward = saved
        totals["ours"] += t_ours
        totals["peer"] += t_peer
        for s in STAGES:
            totals[s] += stage.get(s, 0.0)
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"{name:<16}{size:>10}{len(faces.boxes):>6}{t_ours:>15.3f}{t_peer:>9.3f}{t_ours / t_peer:>7.2f}   "
              + "  ".join(f"{stage.get(s, 0.0):>7.3f}" for s in STAGES))
    print("-" * len(header))
    print(f"{'total':<32}{totals['ours']:>15.3f}{totals['peer']:>9.3f}{totals['ours'] / totals['peer']:>7.2f}   "
          + "  ".join(f"{totals[s]:>7.3f}" for s in STAGES))
    dominant = max(STAGES, key=lambda s: totals[s])
    share = totals[dominant] / max(sum(totals[s] for s in STAGES), 1e-12)
    print(f"dominant stage: {dominant} ({100 * share:.0f}% of the staged time)")


if __name__ == "__main__":
    main()
