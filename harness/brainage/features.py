"""Brain-age features: regional volumes, optionally divided by an intracranial-volume proxy.

Shape letters: M members, S subjects, R regions. Pure functions on arrays.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from harness.enums import parse_enum
from harness.errors import InputError


class IcvNormalization(Enum):
    """How regional volumes are normalised.

    ``NONE`` keeps mm^3. ``SUM`` divides by the sum of all regional volumes of the same member and
    subject. ``ETIV`` divides by the eTIV measure of aseg.stats. ``AUTO`` uses eTIV when the data
    carry it for every member and subject, else the sum.
    """

    NONE = "none"
    SUM = "sum"
    ETIV = "etiv"
    AUTO = "auto"

    @classmethod
    def parse(cls, value: str | IcvNormalization) -> IcvNormalization:
        """Turn a string (``none|sum|etiv|auto``) into the enum, or raise :class:`InputError`."""
        return parse_enum(cls, value, "icv normalization")


def icv_proxy(volumes: np.ndarray) -> np.ndarray:
    """Sum of all regional volumes, ``ICV[m, s] = sum_r V[m, s, r]``; shape (M, S)."""
    return np.asarray(volumes, dtype=float).sum(axis=-1)


def normalize_by_icv(volumes: np.ndarray, icv: np.ndarray) -> np.ndarray:
    """Fractions of intracranial volume: ``F[m, s, r] = V[m, s, r] / ICV[m, s]``.

    Raises
    ------
    InputError
        If any ICV is not strictly positive.
    """
    icv = np.asarray(icv, dtype=float)
    if not (np.isfinite(icv).all() and (icv > 0).all()):
        raise InputError(
            f"icv must be finite and positive for every member and subject, min {icv.min()!r}"
        )
    return np.asarray(volumes, dtype=float) / icv[..., None]


def build_features(
    volumes: np.ndarray, normalization: IcvNormalization, etiv: np.ndarray | None = None
) -> tuple[np.ndarray, IcvNormalization]:
    """Feature cube (M, S, R) and the normalisation actually applied.

    Parameters
    ----------
    volumes : ndarray, shape (M, S, R)
        Regional volumes.
    normalization : IcvNormalization
        Requested normalisation; ``AUTO`` resolves to ``ETIV`` or ``SUM``.
    etiv : ndarray, shape (M, S), optional
        eTIV per member and subject.
    """
    normalization = IcvNormalization.parse(normalization)
    if normalization is IcvNormalization.AUTO:
        normalization = IcvNormalization.SUM if etiv is None else IcvNormalization.ETIV
    if normalization is IcvNormalization.NONE:
        return np.asarray(volumes, dtype=float), normalization
    if normalization is IcvNormalization.ETIV:
        if etiv is None:
            raise InputError(
                "icv normalization 'etiv' needs aseg.stats inputs with an eTIV measure in every "
                "file, or a table with an ICV column (eTIV, EstimatedTotalIntraCranialVol, or "
                "--icv-column NAME)"
            )
        return normalize_by_icv(volumes, etiv), normalization
    return normalize_by_icv(volumes, icv_proxy(volumes)), normalization


def describe_icv(
    requested: IcvNormalization, applied: IcvNormalization, source: str | None, n_features: int
) -> str:
    """Which ICV normalisation was applied and from what, for the output and the manifest."""
    if applied is IcvNormalization.NONE:
        return "none (volumes as given)"
    if applied is IcvNormalization.ETIV:
        return f"etiv ({source or 'eTIV'})"
    text = (
        f"sum (divided by the sum of the {n_features} feature columns, not an intracranial volume"
    )
    if requested is IcvNormalization.AUTO:
        text += "; auto: the input has no eTIV measure or ICV column"
    return text + ")"


def member_variance(features: np.ndarray) -> np.ndarray:
    """Per-feature variance across members, averaged over subjects; shape (R,).

    ``sigma2[r] = mean_s var_m(X[m, s, r])`` with the unbiased (ddof=1) variance over the M
    members. This is the variance the Gaussian-noise control injects.
    """
    features = np.asarray(features, dtype=float)
    if features.shape[0] < 2:
        raise InputError(f"member variance needs at least 2 members, got {features.shape[0]}")
    return features.var(axis=0, ddof=1).mean(axis=0)
