# Frame extraction with ffmpeg: T frames sampled uniformly over each annotated clip, resized, stored
# as uint8 .npy arrays in shards (many videos per job and per file) with a shard index each (one row per
# video: its status and row). Steps read them memory-mapped, never unpickled. Cached: a rerun decodes
# nothing (Snakemake forbids benchmark: on cached rules, so the log reports the time).


rule extract_frames:
    input:
        unpack(get_frames_inputs),
    output:
        frames=layout.SHARD,
        shard_index=layout.SHARD_INDEX,
    log:
        layout.log("extract_frames", "shard{shard}"),
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
