# Frame extraction with ffmpeg: T frames sampled uniformly over each annotated clip, resized, stored
# as uint8 .npy arrays in shards (many videos per job and per file) with an index (status) table each.
# Steps read them memory-mapped, never unpickled. Cached: a rerun decodes nothing.


rule extract_frames:
    input:
        unpack(get_frames_inputs),
    output:
        frames="results/{dataset}/frames/shard{shard}.npy",
        status="results/{dataset}/frames/shard{shard}.status.tsv",
    log:
        "results/logs/{dataset}/extract_frames/shard{shard}.log",
    cache: "omit-software"
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=lambda wc: {
            "shard": int(wc.shard),
            "num_frames": config["frames"]["num_frames"],
            "size": config["frames"]["size"],
            "on_error": config["frames"]["on_error"],
            "resize": config["frames"]["resize"],
        },
        code=code("extract_frames"),
    script:
        "../scripts/extract_frames.py"
