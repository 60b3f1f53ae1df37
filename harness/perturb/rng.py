"""The engine's own counter-based random streams.

Every perturbed tensor draws from a stream keyed by ``(seed, counter)``: the key is hashed with
SplitMix64 into a 63-bit generator seed, and a private ``torch.Generator`` per device is re-seeded
with it (Philox on CUDA, so the stream is counter-based there; Mersenne Twister on CPU, whose
state is re-initialised from the key, which gives the same keyed behaviour). Torch's global RNG
is never read or advanced, and the same ``(seed, counter)`` always gives the same numbers on the
same device.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def splitmix64(value: int) -> int:
    """One SplitMix64 step: a bijective 64-bit mixing of ``value`` (Steele et al., 2014)."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, counter: int) -> int:
    """Return the 63-bit key of stream ``counter`` of run ``seed`` (fits a signed int64)."""
    return splitmix64(splitmix64(seed & _MASK64) ^ (counter & _MASK64)) >> 1


class KeyedStreams:
    """Random numbers for the ``counter``-th perturbed tensor of a run with ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed (e.g. a member's ``SeedPlan.mca``).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device, counter: int) -> torch.Generator:
        """Return this device's private generator, positioned at the start of stream ``counter``."""
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            self._generators[device] = gen
        gen.manual_seed(stream_key(self.seed, counter))
        return gen

    def centred_uniform(
        self, like: torch.Tensor, counter: int, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """``xi ~ U[-1/2, 1/2)`` of ``like``'s shape and device (``u - 1/2``, exact)."""
        out = torch.empty(like.shape, dtype=dtype or like.dtype, device=like.device)
        return out.uniform_(-0.5, 0.5, generator=self.generator(like.device, counter))

    def uniform(
        self, like: torch.Tensor, counter: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """``u ~ U[0, 1)`` of ``like``'s shape and device."""
        gen = self.generator(like.device, counter)
        return torch.rand(like.shape, dtype=dtype, device=like.device, generator=gen)

    def bits(self, like: torch.Tensor, counter: int) -> torch.Tensor:
        """Fair random booleans of ``like``'s shape and device."""
        return self.uniform(like, counter) < 0.5

    def kernel_seed(self, counter: int) -> int:
        """The integer seed a fused kernel (Philox in Triton) uses for stream ``counter``."""
        return stream_key(self.seed, counter)
