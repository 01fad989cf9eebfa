"""What one training step consumes, as the backends receive it: StepInputs (everything random, as
numpy, drawn by training/inputs.py) and the parts of a step the bench times. Below the backends:
they import it, and it imports nothing of theirs or of training/."""

from dataclasses import dataclass

import numpy as np


# The parts of an alternating step, in order, as each backend's phase_fns runs them for the bench
STEP_PARTS = ("D's fakes (G forward)", "D updates", "G update")
# The D calls of one D update, in call order: rows of StepInputs.transform_args' axis 1 (REAL and
# FAKE also of consistency_args' axis 1)
REAL, FAKE, PENALTY = range(3)


@dataclass(frozen=True)
class StepInputs:
    """reals: float32 [n_dis, B, H, W, C] in [-1, 1]; z: float32 [n_dis, B, z_dim], the noise of
    each D update's fakes. z_g: float32 [B_g, z_dim], the G update's own noise; None: the G update
    reuses the last D update's fakes (pytorch/examples dcgan). alphas: float32 [n_dis, B] in
    [0, 1], WGAN-GP's interpolation weights. dropout_key: the step's key of D's dropout masks.
    Class-conditional models: labels int64 [n_dis, B] of the reals, fake_labels int64 [n_dis, B]
    of each D update's fakes, g_labels int64 [B_g] of z_g's fakes (else the last fake_labels)."""

    reals: np.ndarray
    z: np.ndarray
    z_g: np.ndarray | None = None
    alphas: np.ndarray | None = None
    dropout_key: int | None = None
    labels: np.ndarray | None = None
    fake_labels: np.ndarray | None = None
    g_labels: np.ndarray | None = None
    transform_args: np.ndarray | None = None
    g_transform_args: np.ndarray | None = None
    consistency_args: np.ndarray | None = None  # bCR's T: [n_dis, 2, B, width], rows REAL and FAKE
    regularise: bool = True  # R1/R2 in this step's D updates (False on the skipped steps of --reg-every)

    @property
    def n_dis(self) -> int:
        return len(self.reals)
