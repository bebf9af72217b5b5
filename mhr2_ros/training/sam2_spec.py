"""The SAM2 model configs and input sizes that `training.sam2_targets` accepts. Without
torch: the `mhr2-sam2-targets` parser shows them (its --model-config choices)."""

POOLED_SIDE = 8  # the memory map is average-pooled to POOLED_SIDE x POOLED_SIDE
MEMORY_STRIDE = 16  # SAM2's memory map is 1/16 of the input side (64 x 64 at 1024 px)
SIZE_MULTIPLE = MEMORY_STRIDE * POOLED_SIDE  # input sides that pool exactly
# Config names -> yaml inside the sam2 package; checkpoints ship as e.g. sam2.1_hiera_large.pt.
MODEL_CONFIGS = {f"{v}_hiera_{s}": f"configs/{v}/{v}_hiera_{s}.yaml"
                 for v in ("sam2.1", "sam2") for s in ("t", "s", "b+", "l")}  # fmt: skip
