"""Host memory a workflow job asks the scheduler for (``resources: mem_mb``), derived from the config.

Pure Python (no Snakemake, no torch). Frames are memory-mapped, so the dataset's size does not enter: a job
needs 1.5 GB for the Python/PyTorch process, model and optimiser, plus the batches in flight (the batch being
used and two ahead per loader worker, float32 after augmentation), plus, when the model runs on the CPU, the
activations kept for the backward pass. Each retry (attempt) doubles the request.
"""

from __future__ import annotations

__all__ = ["ACT_PER_INPUT", "KINDS", "mem_mb"]

#: Activation bytes per input byte of one training step, per architecture, measured with
#: ``benchmarks/memory_per_arch.py`` (peak RSS growth of one training step over the float32 input size, 2-core CPU).
ACT_PER_INPUT = {
    "r2plus1d_tiny": 25,
    "r2plus1d_18": 151,
    "r3d_18": 63,
    "frame_encoder": 15,
}

#: Job kinds: f_E training or evaluation, f_E's self-supervised pre-training, f_A (GITDL, AVML, rounds, phi_A).
KINDS = ("fe", "ssl", "fa")


def mem_mb(config: dict, kind: str, train: bool = True, attempt: int = 1) -> int:
    """``mem_mb`` of a job of ``kind`` (one of :data:`KINDS`) at retry ``attempt`` (1 = first), rounded up to
    100 MB. A training job of f_E (``fe.gpus``) or f_A (``alignability.gpus``) runs that many processes, each with
    its own interpreter, loader workers and batches in flight (activations are split between them); evaluation
    (``train=False``) keeps a quarter of the activations and runs one process.
    """
    if kind not in KINDS:
        raise ValueError(f"job kind {kind!r}: expected one of {', '.join(KINDS)}")
    fr, fe, al = config["frames"], config["fe"], config["alignability"]
    px = fr["size"] ** 2 * 3 * 4  # one float32 frame
    if kind == "fe":
        batch = fe["batch_size"] if train else config["eval"]["batch_size"]
        items, arch = batch * fe["clip_frames"], fe["arch"]
    elif kind == "ssl":
        ssl = fe["ssl"]
        items, arch = ssl["batch_size"] * ssl["segments"] * 2 * ssl["clip_frames"], fe["arch"]
    else:
        batch = max(al["gitdl"]["batch_size"] * 2, al["avml"]["batch_size"] * 3)
        items, arch = batch * al["num_frames"], "frame_encoder"
    batch_mb = items * px / 2**20
    in_flight = 1 + 2 * fr["workers"]
    act = ACT_PER_INPUT[arch] * batch_mb * (1 if train else 0.25) if config["device"] != "cuda" else 0
    procs = {"fe": fe["gpus"], "fa": al["gpus"]}.get(kind, 1) if train else 1
    need = procs * (1500 + in_flight * batch_mb) + act
    return int(-(-need // 100) * 100) * attempt
