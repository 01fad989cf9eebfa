"""Mixed precision, one definition for both backends.

Convolutions, transposed convolutions and dense layers (the layers torch.autocast lowers) compute
in the low precision: their input, weight and bias are cast to it, the kernel runs in it, and the
result flows on in it, as under torch.autocast, through BatchNorm, the activations, pooling,
upsampling, dropout and the residual sums to the next such layer, up to the network's output,
which returns to the dtype of the network's input (float32). What stays float32: the weights,
Adam's moments, BatchNorm's statistics, running estimates and arithmetic (a low-precision input
is normalised by a mixed-dtype kernel that accumulates in float32 and returns its result in the
low precision), spectral norm's power iteration and vectors, self-attention's products, softmax
and sum with its input, the projection head, global pooling's sum, the losses and the gradient
penalty. Where a sum meets a float32 and a low-precision tensor it is taken in float32 (PyTorch's
type promotion; TensorFlow casts explicitly, as no Keras policy reaches ganbench's own ops).
Checkpoints stay float32 and portable: a run in one precision resumes in another.

An earlier rule widened each low-precision result to float32 where it was made; letting the
results flow removed two casts per layer and ran BatchNorm and the activations on half the bytes
(benchmarks/README.md: with the other changes there, bf16 over fp32 from 1.24-1.41x to 1.48-1.73x
on a CPU with bf16 hardware).

fp16 adds dynamic loss scaling with torch.amp.GradScaler's rule (next_loss_scale), one scale per
network: a step whose gradients are not finite is skipped (no Adam step, no EMA update) and the
scale halves; after `growth_interval` finite steps in a row it doubles.
"""

PRECISIONS = ("fp32", "bf16", "fp16")
COMPUTE_DTYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def compute_dtype(precision: str) -> str | None:
    """The dtype name convolutions and dense layers compute in; None for float32."""
    if precision not in COMPUTE_DTYPES:
        raise ValueError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    return COMPUTE_DTYPES[precision]


def scales_loss(precision: str) -> bool:
    return precision == "fp16"


GROWTH_FACTOR, BACKOFF_FACTOR, GROWTH_INTERVAL = 2.0, 0.5, 2000  # torch.amp.GradScaler's defaults
INITIAL_SCALE = 2.0**16


def next_loss_scale(scale, tracker, finite, where):
    """GradScaler's update after one backward, written once over `where(cond, a, b)` (Python's
    conditional, or tf.where for the graph): inf/nan gradients halve the scale and reset the count
    of finite steps; the growth_interval-th finite step in a row doubles it. (scale, tracker)."""
    grown = tracker + 1
    full = grown == GROWTH_INTERVAL
    new_tracker = where(finite, where(full, grown * 0, grown), grown * 0)
    new_scale = where(finite, where(full, scale * GROWTH_FACTOR, scale), scale * BACKOFF_FACTOR)
    return new_scale, new_tracker


def next_skipped(skipped, finite, where):
    """The count of skipped updates after one more update, skipped unless its gradients are finite."""
    return where(finite, skipped, skipped + 1)


def python_where(cond, a, b):
    return a if cond else b


def initial_loss_scales(state: dict) -> dict:
    """{network: {"scale", "tracker", "skipped"}}: the checkpoint's (an fp16 run's), else fresh."""
    fresh = {"scale": INITIAL_SCALE, "tracker": 0, "skipped": 0}
    return {key: dict(fresh, **(state.get("loss_scales") or {}).get(key, {})) for key in ("G", "D")}
