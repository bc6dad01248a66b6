"""GPU smoke test of the training paths the workflow runs with ``device: cuda``.

Runs f_E training/prediction, GITDL pre-training, AVML (whose soft-DTW goes through the CuPy kernels
on CUDA tensors), phi_A and all-pairs mining on random uint8 clips, on the CPU and on the GPU with the
same seed, and prints the losses and agreement. Needs torch (CUDA) and cupy; no dataset, no ffmpeg.

    PYTHONPATH=src python gpu_check/gpu_training_smoke.py
"""

from __future__ import annotations

import time

import numpy as np
import torch


def run(device: str) -> dict:
    from finepseudo.align import dtw
    from finepseudo.align.alignability import class_alignability, pairwise_distance
    from finepseudo.align.train import embed_videos, pretrain_gitdl, train_avml
    from finepseudo.models.video import build_video_model
    from finepseudo.models.train import predict_proba, train_classifier

    g = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 255, (24, 16, 32, 32, 3), dtype=torch.uint8, generator=g)
    labels = np.arange(24) % 4
    out: dict = {"device": device}
    t0 = time.time()
    torch.manual_seed(0)
    fe = build_video_model("r2plus1d_tiny", 4)
    hist = train_classifier(fe, clips, labels, epochs=2, batch_size=8, lr=3e-3, weight_decay=0.05, clip_frames=8,
                            seed=0, device=device, log=lambda m: None)
    out["fe_loss"] = [round(h["loss"], 4) for h in hist]
    out["fe_probs"] = predict_proba(fe, clips, clip_frames=8, clips_per_video=2, batch_size=8, device=device)
    fa, gh = pretrain_gitdl(clips, num_frames=8, dim=32, width=8, layers=1, pool=2, epochs=2, batch_size=8, lr=1e-3, tau=0.1,
                            sigma=2.0, seed=0, device=device, log=lambda m: None)
    out["gitdl_loss"] = [round(h["loss"], 4) for h in gh]
    emb = embed_videos(fa, clips, num_frames=8, device=device)
    d = dtw.pairwise(emb, emb, gamma=0.0, backend="cupy" if device == "cuda" else "cpu")
    d[labels[:, None] == labels[None, :]] = np.inf
    fa, fs, ah = train_avml(fa, clips, labels, d.argmin(1), num_frames=8, epochs=2, batch_size=8, lr=5e-4, gamma=0.1,
                            margin=0.1, omega=1.0, use_triplet=True, use_score=True, seed=0, device=device,
                            log=lambda m: None)
    out["avml_loss"] = [round(h["loss"], 4) for h in ah]
    emb = embed_videos(fa, clips, num_frames=8, device=device)
    dist = pairwise_distance(emb, emb, gamma=0.1, backend="cupy" if device == "cuda" else "cpu")
    _, p_a = class_alignability(dist, labels, 4, fs.cpu(), 0.1)
    out["pA"] = p_a
    out["seconds"] = round(time.time() - t0, 2)
    return out


def main() -> None:
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    cpu, gpu = run("cpu"), run("cuda")
    for k in ("fe_loss", "gitdl_loss", "avml_loss", "seconds"):
        print(f"{k:12s} cpu={cpu[k]} cuda={gpu[k]}")
    for k in ("fe_probs", "pA"):
        print(f"{k:12s} max |cpu - cuda| = {np.abs(cpu[k] - gpu[k]).max():.2e}, argmax agreement = "
              f"{(cpu[k].argmax(1) == gpu[k].argmax(1)).mean():.2f}")
    ok = all(np.isfinite(v).all() for r in (cpu, gpu) for k, v in r.items() if k.endswith("loss"))
    print("finite losses on both devices:", ok)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
