"""The engine's own keyed random streams.

Every perturbed tensor draws from a stream keyed by ``(seed, counter)``: the key is hashed with
SplitMix64 into a 63-bit stream key. On CUDA a private ``torch.Generator`` (Philox, counter
based) is re-seeded with it; the fused Triton kernels use Triton's Philox with the same key. On
CPU element ``i`` of the stream with key ``k`` gets the 64-bit word
``mix64(k xor (i + 1) * 0x9E3779B97F4A7C15)``, ``mix64`` being SplitMix64's output function
(Steele, Lea and Flood 2014): a counter-based hash, so the fused C++ kernels
(:mod:`harness.perturb.native`) and this numpy code draw the same words and reach any element
directly, and (unlike SplitMix64's own ``k + i * gamma`` sequence) the streams of two keys are
never shifted copies of each other. Torch's and numpy's global RNGs are never read or advanced,
and the same ``(seed, counter)`` always gives the same numbers on the same device.

From a word ``w``: a uniform ``u = (w >> 12) 2^-52`` in ``[0, 1)``; a fair bit, ``w``'s top bit.
"""

from __future__ import annotations

import numpy as np
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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def stream_words(key: int, count: int) -> np.ndarray:
    """Words ``0 .. count-1`` of the CPU stream with 64-bit ``key``: ``mix64(key ^ (i + 1) gamma)``
    in wrapping uint64 arithmetic."""
    z = np.arange(1, count + 1, dtype=np.uint64)
    z *= _GOLDEN
    z ^= np.uint64(key & _MASK64)
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def uniform_from_words(words: np.ndarray) -> np.ndarray:
    """``(w >> 12) 2^-52`` in ``[0, 1)``: the top 52 bits as the fraction of a double in
    ``[1, 2)``, minus one (exact)."""
    return ((words >> np.uint64(12)) | np.uint64(0x3FF0000000000000)).view(np.float64) - 1.0


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

    def _words(self, counter: int, count: int) -> np.ndarray:
        """``count`` random 64-bit words of CPU stream ``counter``."""
        return stream_words(stream_key(self.seed, counter), count)

    def centred_uniform(
        self, like: torch.Tensor, counter: int, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """``xi ~ U[-1/2, 1/2)`` of ``like``'s shape and device.

        On CPU always fp64 on a grid of ``2^-52`` (the fused kernels' numbers); on CUDA in
        ``dtype`` (default ``like.dtype``) from torch's Philox generator.
        """
        if like.device.type != "cpu":
            out = torch.empty(like.shape, dtype=dtype or like.dtype, device=like.device)
            return out.uniform_(-0.5, 0.5, generator=self.generator(like.device, counter))
        return self.uniform(like, counter).sub_(0.5)

    def uniform(self, like: torch.Tensor, counter: int) -> torch.Tensor:
        """``u ~ U[0, 1)`` of ``like``'s shape and device: fp64 on a grid of ``2^-52`` on CPU,
        fp32 on CUDA."""
        if like.device.type != "cpu":
            gen = self.generator(like.device, counter)
            return torch.rand(like.shape, device=like.device, generator=gen)
        words = self._words(counter, like.numel())
        return torch.from_numpy(uniform_from_words(words)).reshape(like.shape)

    def bits(self, like: torch.Tensor, counter: int) -> torch.Tensor:
        """Fair random booleans of ``like``'s shape and device (the words' top bits on CPU)."""
        if like.device.type != "cpu":
            return self.uniform(like, counter) < 0.5
        top = (self._words(counter, like.numel()) >> np.uint64(63)).astype(np.bool_)
        return torch.from_numpy(top).reshape(like.shape)

    def kernel_seed(self, counter: int) -> int:
        """The integer seed a fused kernel (Philox in Triton) uses for stream ``counter``."""
        return stream_key(self.seed, counter)
