"""How a training step keys its calls of D, the same in every backend.

Each training forward of D in a step gets a rank (0, 1, ... in call order: real, fake, the
penalty's interpolates, the G update's fakes) and reads the call key mix32(step key ^ rank),
which seeds its dropout masks; a model without dropout has no step key and reads none. A replica
of a data-parallel step passes its rank as "shard": its masks are the rows of the global batch's.
The state is per thread: TensorFlow's MirroredStrategy traces each local replica's step in a
thread of its own, interleaved with the others.
"""

import threading


class DCallKeying:
    """Mixin of a backend GAN. The backend provides `_mix(x)` (rng.mix32 on its int64 tensors)
    and `_d_forward(images, context)` (a training forward of D)."""

    def _start_step(self, step_key, shard: int = 0) -> None:
        """step_key: the step's dropout key as the backend's int64 scalar, or None. shard: the
        replica's rank, whose equal share of each global batch starts at row shard * B_local."""
        if "_keying" not in self.__dict__:
            self._keying = threading.local()
        self._keying.step_key, self._keying.d_calls, self._keying.shard = step_key, 0, shard

    def _d_context(self, labels=None) -> dict:
        """The context of D's next training call (its labels, when conditional); counts the call
        (while tracing, in graphs)."""
        context = {} if labels is None else {"labels": labels}
        state = self._keying
        if state.step_key is not None:
            context["call_key"] = self._mix(state.step_key ^ state.d_calls)
            if state.shard:
                context["shard"] = state.shard
            state.d_calls += 1
        return context

    def _call_D(self, images, labels=None):
        return self._d_forward(images, self._d_context(labels))

    def _d_pair(self, real, fake, real_labels=None, fake_labels=None) -> tuple:
        """D's logits on a real and a fake batch: two calls (BatchNorm sees each batch alone)."""
        return self._call_D(real, real_labels), self._call_D(fake, fake_labels)


class _NoneForEach:
    def __getitem__(self, index):
        return None


def per_update(batches):
    """A step input indexed by D update: the [n_dis, ...] tensor, or None for each update when the
    step has no such input (no labels, no penalty weights)."""
    return _NoneForEach() if batches is None else batches
