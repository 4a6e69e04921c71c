"""The files of a dreamscope run directory, named once: training writes them, and the probe,
model-fit, sweep, demo and instrument API find them by these names."""

CONFIG = "config.yaml"  # the full config the run was trained with (resume and probe rebuild from it)
META = "meta.json"  # what the doctor needs to know about the policy (bounds, entropy ceiling and floor)
METRICS = "metrics.jsonl"  # one JSON object of canonical metrics per logged step
CHECKPOINT = "checkpoint.pt"  # weights-only torch checkpoint
REPLAY = "replay.npz"  # the replay that belongs to the checkpoint
EVALUATION = "evaluation.json"  # a sweep's --score-by sample/mode: new episodes' results per checkpoint step
REPLAY_STAGED = "replay.staged.npz"  # the replay of a checkpoint being written; renamed to REPLAY once it is
