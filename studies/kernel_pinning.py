"""Do a run's numbers depend on which CPU kernels torch and numpy pick, does pinning them to AVX2
(``cpu_kernels: avx2``, :mod:`finepseudo.kernels`) make them independent of that choice, and what does it cost?

    PYTHONPATH=src nice -n 5 .venv/bin/python studies/kernel_pinning.py [--parts 1234] [--steps 60] [--reps 3]

One workload, run in a fresh subprocess per setting (the libraries read their variables when they load),
1 thread, on data rendered once by the SynthDive generator (14 classes, 4 train and 4 test videos each,
32 frames of 48 px):

- f_E: r2plus1d_tiny trained with ``train_classifier`` (AdamW, batch 16, 16-frame clips) for ``--steps``
  steps, then test predictions (2 clips per video);
- f_A: GITDL pre-training (2 epochs), all-pairs hard DTW on the train embeddings with each video's hardest
  negative (``mine_pairs``), AVML (2 epochs) with those negatives, then phi_A of the test videos against the
  train gallery (soft-DTW, ``predict_alignability``);
- SynthDive rendering of 3 videos (numpy only).

Part 1 forces one library at a time to another instruction set (what a machine whose native choice differs
would run) and compares with the unpinned run; part 2 runs the pinned setting (every variable of
``finepseudo.kernels.PINNED_ENV["avx2"]``) again, with MKL's own choice moved, and with 2 threads; part 3
times the pinned setting and each library's pin alone, each at the same time as an unpinned run (two processes,
one per core, so that both see the same load from other processes), ``--reps`` pairs each (wall time ``t_*``
and the process's CPU time ``cpu_*``); part 4
encodes and decodes a rendered video with ffmpeg with and without its AVX-512 kernels. Columns: max |difference| of the weights
after training and of the training losses, test videos whose predicted class changed, DTW distance
differences and changed hardest negatives, whether every number is bit-identical. The table is printed and
written to ``--out`` (CSV).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from finepseudo.kernels import PINNED_ENV  # noqa: E402 - does not import torch or numpy

sys.path.insert(0, str(ROOT / "benchmarks"))
import _record  # noqa: E402

RESULTS = ROOT / "studies/results/kernel_pinning.csv"

KNOBS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE",
         "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "OPENBLAS_L2_SIZE", "DNNL_MAX_CPU_ISA")
PINNED = PINNED_ENV["avx2"]
NUMPY_AVX2 = PINNED["NPY_DISABLE_CPU_FEATURES"]

# name, extra environment, child options. Part 1: one library moved at a time (compared with "native").
PART1 = [
    ("native", {}, {}),
    ("ATen AVX2", {"ATEN_CPU_CAPABILITY": "avx2"}, {}),
    ("oneDNN AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, {}),
    ("oneDNN AVX512_CORE_BF16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, {}),  # an AVX-512 CPU without AMX
    ("MKL AVX2", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {}),
    ("OpenBLAS Haswell", {"OPENBLAS_CORETYPE": "Haswell"}, {}),
    ("numpy SIMD X86_V3", {"NPY_DISABLE_CPU_FEATURES": NUMPY_AVX2}, {}),
    ("oneDNN off", {}, {"mkldnn": "off"}),
]
# Part 2: the pinned setting (compared with "pinned").
PART2 = [
    ("pinned", PINNED, {}),
    ("pinned, again", PINNED, {}),
    ("pinned, MKL at most AVX2", {**PINNED, "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {}),
    ("pinned, MKL at most SSE4_2", {**PINNED, "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, {}),
    ("pinned, 2 threads", PINNED, {"threads": 2}),
]


# Part 3: the cost, every setting once per repetition, interleaved (compared with "native" of the same repetition):
# the pinned setting and each library's pin alone.
COST = [
    ("native", {}),
    ("pinned", PINNED),
    ("ATen AVX2", {"ATEN_CPU_CAPABILITY": "avx2"}),
    ("oneDNN AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("MKL COMPATIBLE", {"MKL_CBWR": "COMPATIBLE"}),
    ("numpy AVX2", {k: PINNED[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES")}),
]


# ----------------------------------------------------------------------------------------------------------
# the data (rendered once, in the parent)

def make_data(path: Path, per_class: int = 8, frames: int = 32, size: int = 48) -> None:
    import numpy as np

    from finepseudo.data import synthdive as sd

    cfg = sd.resolve_config({"frame_size": size})
    table = sd.class_table(cfg, sd.load_diving48_vocab())
    clips, labels = [], []
    for c in table:
        spec = sd.parse_class(sd.load_diving48_vocab()[c["diving48_label"]])
        for k in range(per_class):
            video, names = sd.render_video(spec, cfg, np.random.default_rng([7, c["label"], k]))
            act = [i for i, n in enumerate(names) if n != "idle"]
            idx = np.linspace(act[0], act[-1], frames).round().astype(int)
            clips.append(video[idx])
            labels.append(c["label"])
    clips, labels = np.stack(clips), np.array(labels)
    train = np.arange(len(labels)) % per_class < per_class // 2
    np.savez(path, train=clips[train], train_labels=labels[train], test=clips[~train], test_labels=labels[~train])


# ----------------------------------------------------------------------------------------------------------
# the workload (in a child process, with the setting's environment)

def child(data: str, out: str, steps: int, threads: int, mkldnn: str) -> None:
    import numpy as np
    import torch

    from finepseudo.kernels import cpu_facts

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as the workflow's steps do
    if mkldnn == "off":
        torch.backends.mkldnn.enabled = False
    from finepseudo.align.alignability import class_alignability, pairwise_distance
    from finepseudo.align.train import embed_videos, pretrain_gitdl, train_avml
    from finepseudo.data import synthdive as sd
    from finepseudo.models.train import predict_proba, train_classifier
    from finepseudo.models.video import build_video_model

    d = np.load(data)
    x, y = torch.from_numpy(d["train"]), d["train_labels"]
    xt = torch.from_numpy(d["test"])
    classes = int(y.max()) + 1
    res: dict = {"facts": cpu_facts()}
    quiet = lambda m: None  # noqa: E731

    # SynthDive rendering (numpy only)
    cfg = sd.resolve_config({"frame_size": 48})
    vocab = sd.load_diving48_vocab()
    h = hashlib.sha256()
    for c in sd.class_table(cfg, vocab)[:3]:
        video, _ = sd.render_video(sd.parse_class(vocab[c["diving48_label"]]), cfg, np.random.default_rng(c["label"]))
        h.update(video.tobytes())
    res["render"] = h.hexdigest()[:16]

    # f_E
    torch.manual_seed(0)
    model = build_video_model("r2plus1d_tiny", classes)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = train_classifier(model, x, y, epochs=1, steps=steps, batch_size=16, lr=0.003, weight_decay=0.05,
                            clip_frames=16, seed=0, log=quiet)
    res["t_fe"], res["cpu_fe"] = time.perf_counter() - t0, time.process_time() - c0
    fe_w = np.concatenate([v.detach().double().flatten().numpy() for v in model.state_dict().values()
                           if v.is_floating_point()])
    probs = predict_proba(model, xt, clip_frames=16, clips_per_video=2)

    # f_A: GITDL, mining, AVML, phi_A
    t0, c0 = time.perf_counter(), time.process_time()
    fa, _ = pretrain_gitdl(x, num_frames=16, dim=128, width=16, layers=0, pool=4, epochs=2, batch_size=16,
                           lr=0.001, tau=0.1, sigma=2.0, seed=0, log=quiet)
    emb = embed_videos(fa, x, num_frames=16)
    dist = pairwise_distance(emb, emb, gamma=0.0, backend="cpu")
    other = y[:, None] != y[None, :]
    hard_neg = np.where(other, dist, np.inf).argmin(1)
    fa, score, hist_a = train_avml(fa, x, y, hard_neg, num_frames=16, epochs=2, batch_size=16, lr=0.0005, gamma=0.1,
                                   margin=0.1, omega=1.0, use_triplet=True, use_score=True, seed=0, log=quiet)
    g_emb, q_emb = embed_videos(fa, x, num_frames=16), embed_videos(fa, xt, num_frames=16)
    d_q = pairwise_distance(q_emb, g_emb, gamma=0.1, backend="cpu")
    _, p_a = class_alignability(d_q, y, classes, score, 0.1)
    res["t_fa"], res["cpu_fa"] = time.perf_counter() - t0, time.process_time() - c0
    fa_w = np.concatenate([v.detach().double().flatten().numpy() for v in list(fa.state_dict().values())
                           + list(score.state_dict().values()) if v.is_floating_point()])
    np.savez(out, fe_w=fe_w, fe_loss=np.array([r["loss"] for r in hist]), fe_probs=probs, fa_w=fa_w,
             fa_loss=np.array([r["loss"] for r in hist_a]), dist=dist, hard_neg=hard_neg, p_a=p_a)
    Path(out).with_suffix(".json").write_text(json.dumps(res))


# ----------------------------------------------------------------------------------------------------------
# the parent

def start_child(tmp: Path, name: str, env_extra: dict, opts: dict, data: Path, steps: int):
    """Start the workload in a fresh process with the libraries' variables unset, then ``env_extra`` set."""
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT / "src")
    out = tmp / f"{hashlib.md5((name + str(time.time_ns())).encode()).hexdigest()[:10]}.npz"
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--child-out", str(out), "--steps", str(steps),
           "--threads", str(opts.get("threads", 1)), "--mkldnn", opts.get("mkldnn", "on")]
    return name, out, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_child(started) -> dict:
    import numpy as np

    name, out, proc = started
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: child failed\n{err[-3000:]}")
    res = json.loads(out.with_suffix(".json").read_text())
    with np.load(out) as z:
        res.update({k: z[k] for k in z.files})
    res["name"] = name
    return res


def run_child(tmp: Path, name: str, env_extra: dict, opts: dict, data: Path, steps: int) -> dict:
    return finish_child(start_child(tmp, name, env_extra, opts, data, steps))


def compare(a: dict, b: dict) -> dict:
    import numpy as np

    def mx(k):
        return float(np.max(np.abs(a[k] - b[k])))

    same = all(np.array_equal(a[k], b[k]) for k in ("fe_w", "fe_loss", "fe_probs", "fa_w", "fa_loss", "dist",
                                                    "hard_neg", "p_a")) and a["render"] == b["render"]
    return {
        "fe_weights_maxdiff": mx("fe_w"), "fe_loss_maxdiff": mx("fe_loss"),
        "fe_pred_changed": int((a["fe_probs"].argmax(1) != b["fe_probs"].argmax(1)).sum()),
        "fe_top1": round(100 * float((a["fe_probs"].argmax(1) == a["test_labels"]).mean()), 1),
        "fa_weights_maxdiff": mx("fa_w"), "dtw_maxdiff": mx("dist"), "pa_maxdiff": mx("p_a"),
        "hard_neg_changed": int((a["hard_neg"] != b["hard_neg"]).sum()),
        "pa_pred_changed": int((a["p_a"].argmax(1) != b["p_a"].argmax(1)).sum()),
        "render_same": a["render"] == b["render"], "bit_identical": bool(same),
    }


def ffmpeg_check(data: Path, tmp: Path) -> list[dict]:
    """Encode the first rendered video as the generator does (libx264, +bitexact) and decode and scale it as
    frame extraction does, with ffmpeg's own SIMD kernels unrestricted, without AVX-512, and without AVX2."""
    import numpy as np

    video = np.load(data)["train"][0]
    raw = tmp / "v.rgb"
    raw.write_bytes(np.ascontiguousarray(video).tobytes())
    s = video.shape[1]
    rows, ref = [], None
    for name, flags in [("native", []), ("no AVX-512", ["-cpuflags", "-avx512-avx512icl"]),
                        ("no AVX-512, no AVX2", ["-cpuflags", "-avx512-avx512icl-avx2-fma3"])]:
        mp4 = tmp / "v.mp4"
        subprocess.run(["ffmpeg", "-y", "-nostdin", "-loglevel", "error", *flags, "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{s}x{s}", "-framerate", "25", "-i", str(raw), "-vcodec", "libx264", "-pix_fmt", "yuv420p",
                        "-crf", "17", "-preset", "medium", "-bf", "0", "-threads", "1", "-fflags", "+bitexact",
                        "-flags:v", "+bitexact", str(mp4)], check=True)
        dec = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *flags, "-i", str(mp4), "-vf",
                              "scale=32:32:flags=area:force_original_aspect_ratio=increase,crop=32:32", "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "pipe:"], check=True, capture_output=True).stdout
        got = (hashlib.sha256(mp4.read_bytes()).hexdigest()[:12], hashlib.sha256(dec).hexdigest()[:12])
        ref = ref or got
        rows.append({"part": "4 ffmpeg", "setting": name, "mp4_same": got[0] == ref[0], "frames_same": got[1] == ref[1]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="f_E optimiser steps")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions of each setting of part 3")
    ap.add_argument("--parts", default="1234", help="which parts to run (digits 1-4; 2 needs 1's data only)")
    ap.add_argument("--out", default=str(ROOT / "studies/out/kernel_pinning.csv"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--mkldnn", default="on", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.data, a.child_out, a.steps, a.threads, a.mkldnn)
        return
    import pandas as pd

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        data = tmp / "data.npz"
        t0 = time.perf_counter()
        make_data(data)
        import numpy as np

        test_labels = np.load(data)["test_labels"]
        print(f"data rendered in {time.perf_counter() - t0:.0f} s; {args_line(a)}; CPU: {cpu_line()}", flush=True)
        rows, runs = [], {}
        for part, table, ref in (("1 one library moved", PART1, "native"), ("2 pinned", PART2, "pinned")):
            if part[0] not in a.parts:
                continue
            for name, env, opts in table:
                r = run_child(tmp, name, env, opts, data, a.steps)
                r["test_labels"] = test_labels
                runs[name] = r
                row = {"part": part, "setting": name, "vs": ref, **compare(r, runs[ref]),
                       "aten": r["facts"]["aten capability"], "numpy_blas": r["facts"]["numpy blas"].split("core ")[-1],
                       "t_fe_s": round(r["t_fe"], 1), "t_fa_s": round(r["t_fa"], 1), "cpu_fe_s": round(r["cpu_fe"], 1),
                       "cpu_fa_s": round(r["cpu_fa"], 1)}
                rows.append(row)
                print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        # part 3: cost. Each setting runs at the same time as an unpinned run, one process per core, so that both
        # see the same load from other processes (a shared machine's load moves times by tens of percent)
        for rep in range(a.reps if "3" in a.parts else 0):
            for name, env in COST[1:]:
                pair = [start_child(tmp, "native", {}, {}, data, a.steps), start_child(tmp, name, env, {}, data, a.steps)]
                for r in map(finish_child, pair):
                    rows.append({"part": "3 cost", "setting": r["name"], "pair": f"{name} {rep + 1}",
                                 "t_fe_s": round(r["t_fe"], 2), "t_fa_s": round(r["t_fa"], 2),
                                 "cpu_fe_s": round(r["cpu_fe"], 2), "cpu_fa_s": round(r["cpu_fa"], 2)})
                    print(rows[-1], flush=True)
        if "4" in a.parts:
            rows += ffmpeg_check(data, tmp)
    df = pd.DataFrame(rows)
    cost = df[df["part"] == "3 cost"] if rows else df
    summary = []
    for name, _ in COST[1:] if len(cost) else ():
        pairs = cost[cost["pair"].str.startswith(name + " ")]
        nat, pin = (pairs[pairs["setting"] == s].reset_index() for s in ("native", name))
        for col in ("t_fe_s", "t_fa_s", "cpu_fe_s", "cpu_fa_s"):
            ratio = pin[col] / nat[col]
            summary.append(f"{name} / native, {col}: {nat[col].median():.1f} s native, {pin[col].median():.1f} s "
                           f"{name}; per pair {', '.join(f'{v:.2f}' for v in ratio)} (median {ratio.median():.2f})")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.to_string(index=False))
    print("\n".join(summary))
    print(f"wrote {a.out}")
    if rows:
        print(f"appended to {_record.append(RESULTS, rows, steps=a.steps)}")


def args_line(a) -> str:
    return f"steps {a.steps}, reps {a.reps}, parts {a.parts}, python {sys.version.split()[0]}"


def cpu_line() -> str:
    from finepseudo.kernels import _cpuinfo

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    return (f"{info.get('model name', '?')} ({info.get('vendor_id', '?')}; "
            f"{' '.join(f for f in ('avx2', 'avx512f', 'amx_tile') if f in flags)}), {os.cpu_count()} logical CPUs")


if __name__ == "__main__":
    main()
