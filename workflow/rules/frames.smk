# Frame extraction with ffmpeg: T frames sampled uniformly over each annotated clip, resized, stored
# as uint8 tensors in shards (many videos per job and per file). Cached: a rerun decodes nothing.


rule extract_frames:
    input:
        unpack(get_frames_inputs),
    output:
        frames="results/{dataset}/frames/shard{shard}.pt",
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
        shard=lambda wc: int(wc.shard),
        num_frames=config["frames"]["num_frames"],
        size=config["frames"]["size"],
        on_error=config["frames"]["on_error"],
    script:
        "../scripts/extract_frames.py"
