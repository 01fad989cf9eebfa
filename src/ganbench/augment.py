"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image D sees, reals and
fakes, in D's and G's updates, so that D cannot memorise a small training set.

Written once: the random draws are numpy, keyed on (seed, STREAM_AUGMENT, step) like every other
input of a step, and travel in StepInputs.transform_args, one row of numbers per image; the
transform (`diffaugment`) is a few tensor ops over the backend's OPS, set at the step's one D-call
seam (GANStep.d_transform). Each policy with the reference's ranges:
- color: brightness + U(-0.5, 0.5); saturation: (x - channel mean) * U(0, 2) + channel mean;
  contrast: (x - image mean) * U(0.5, 1.5) + image mean;
- translation: shift by whole pixels, up to 1/8 of the size each way, the uncovered border 0;
- cutout: a square of half the size (rounded) at a random place set to 0.
Translation and cutout are exact 0/1 matrices and masks, drawn in numpy: applied by einsum and a
product, they move and clear pixels without rounding, with gradients to every moved pixel.

Balanced consistency regularisation (bCR, Zhao et al. 2021) reuses the translation as its
semantics-preserving T, drawn on a stream of its own (`consistency_args`): D's output on an image
and on its translated copy are pulled together (losses.consistency_penalty).
"""

from dataclasses import dataclass

import numpy as np

from ganbench.errors import GanbenchError
from ganbench.rng import keyed_rng

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5
# the D calls of one D update that are augmented: real, fake and the gradient penalty's interpolates
CALLS_PER_D_UPDATE = 3
# bCR's T: a translation of up to TRANSLATION_RATIO of the size, zero fill (the paper shifts CIFAR-10
# by up to 4 of 32 pixels; its flips are left out: they do not preserve digits)
CONSISTENCY_POLICIES = ("translation",)


def parse_policy(text: str) -> tuple:
    """"color,translation,cutout" -> the policies in their fixed order of application ("" -> ())."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise GanbenchError(f"unknown DiffAugment policy {unknown[0]!r} (choose from {', '.join(POLICIES)}, "
                            "comma-separated)")
    return tuple(p for p in POLICIES if p in names)


@dataclass(frozen=True)
class Layout:
    """Where each policy's numbers sit in an image's row of transform_args."""

    policies: tuple
    channels: int
    size: int

    def parts(self) -> dict:
        h = self.size
        sizes = {"color": 3, "translation": 2 * h * h, "cutout": h * h}
        out, start = {}, 0
        for policy in self.policies:
            out[policy] = (start, start + sizes[policy])
            start += sizes[policy]
        return out

    @property
    def width(self) -> int:
        return max((end for _, end in self.parts().values()), default=0)


def shift_matrices(shifts: np.ndarray, size: int) -> np.ndarray:
    """[n, size, size]: row i of sample k is one-hot at i + shifts[k], all zero where that is off
    the image: applied along an axis, output pixel i takes input pixel i + shift, or 0."""
    source = np.arange(size)[None, :, None] + shifts[:, None, None]
    return (source == np.arange(size)[None, None, :]).astype(np.float32)


def cutout_masks(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """[n, size, size]: 1, and 0 on a square of CUTOUT_RATIO * size (rounded) around a random centre
    (the square clipped at the border, as the reference clips it)."""
    side = int(size * CUTOUT_RATIO + 0.5)
    centres = rng.integers(0, size + (1 - side % 2), (n, 2))
    first = centres - side // 2
    grid = np.arange(size)
    inside = [(grid[None, :] >= first[:, a, None]) & (grid[None, :] < first[:, a, None] + side) for a in (0, 1)]
    return 1.0 - (inside[0][:, :, None] & inside[1][:, None, :]).astype(np.float32)


def draw_args(layout: Layout, rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 [n, layout.width]: one row of augmentation numbers for each of n images."""
    h, rows = layout.size, []
    for policy in layout.policies:
        if policy == "color":
            rows.append(rng.uniform(0.0, 1.0, (n, 3)))
        elif policy == "translation":
            limit = int(h * TRANSLATION_RATIO + 0.5)
            shifts = rng.integers(-limit, limit + 1, (n, 2))
            rows += [shift_matrices(shifts[:, a], h).reshape(n, -1) for a in (0, 1)]
        else:
            rows.append(cutout_masks(rng, n, h).reshape(n, -1))
    return np.concatenate([r.astype(np.float32) for r in rows], axis=1) if rows else np.zeros((n, 0), np.float32)


def step_args(layout: Layout, seed: int, stream: int, step: int, n_dis: int, batch: int, batch_g: int) -> tuple:
    """(transform_args [n_dis, CALLS_PER_D_UPDATE, batch, width], g_transform_args [batch_g, width])
    of G step `step`, keyed on (seed, stream, step)."""
    rng = keyed_rng(seed, stream, step)
    d_args = draw_args(layout, rng, n_dis * CALLS_PER_D_UPDATE * batch)
    return d_args.reshape(n_dis, CALLS_PER_D_UPDATE, batch, -1), draw_args(layout, rng, batch_g)


def consistency_args(seed: int, stream: int, step: int, n_dis: int, batch: int, size: int) -> np.ndarray:
    """bCR's T of G step `step`: float32 [n_dis, 2, batch, width], rows for each D update's reals
    and fakes (step_inputs.REAL, FAKE), keyed on (seed, stream, step)."""
    layout = Layout(CONSISTENCY_POLICIES, 1, size)
    return draw_args(layout, keyed_rng(seed, stream, step), n_dis * 2 * batch).reshape(n_dis, 2, batch, -1)


def consistency_transform(channels: int, size: int):
    """bCR's T as a transform fn(ops, images, args) -> images (see diffaugment)."""
    return diffaugment(Layout(CONSISTENCY_POLICIES, channels, size))


def diffaugment(layout: Layout):
    """The transform of D's input for GANStep.d_transform: fn(ops, images, args) -> images, over
    ops.reshape / ops.einsum and ops.layout (NCHW or NHWC), with the policies in layout's order."""
    c, h = layout.channels, layout.size

    def transform(ops, x, args):
        nchw = ops.layout == "NCHW"
        pixels = "bchw" if nchw else "bhwc"

        def per_pixel(t):  # [B, H, W] -> broadcastable against the images
            return t[:, None] if nchw else t[..., None]

        for policy, (start, end) in layout.parts().items():
            part = args[:, start:end]
            if policy == "color":
                u = [ops.reshape(part[:, i:i + 1], (-1, 1, 1, 1)) for i in range(3)]
                x = x + (u[0] - 0.5)
                channel_mean = per_pixel(ops.einsum(f"{pixels}->bhw", x) / c)
                x = (x - channel_mean) * (u[1] * 2.0) + channel_mean
                image_mean = ops.reshape(ops.einsum(f"{pixels}->b", x) / (c * h * h), (-1, 1, 1, 1))
                x = (x - image_mean) * (u[2] + 0.5) + image_mean
            elif policy == "translation":
                rows, cols = ops.reshape(part[:, :h * h], (-1, h, h)), ops.reshape(part[:, h * h:], (-1, h, h))
                moved = "bcij" if nchw else "bijc"
                x = ops.einsum(f"bhi,{moved},bwj->{pixels}", rows, x, cols)
            else:
                x = x * per_pixel(ops.reshape(part, (-1, h, h)))
        return x

    return transform
