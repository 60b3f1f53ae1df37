"""Group statistics, normalisation and the parquet table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from harness.errors import InputError
from harness.introspect import COLUMNS
from harness.introspect.stats import benjamini_hochberg, compare_groups, hedges_g, normalise
from harness.introspect.table import SpectraTable, read_spectra


def _table(seed: int, shift: float, shifted=("grad",), steps=12, size_b=1):
    """Two groups, 2 epochs x 2 layers x 3 quantities x 10 indices; N(1, 0.1) per step.

    Group b's values are multiplied by its relative size (grad: x size_b, act/adj: x sqrt) so
    they are identical after normalisation, and shifted by ``shift`` on indices 0-2 of the
    ``shifted`` quantities.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(2):
        for layer in ("fc1.weight", "fc2.weight"):
            for quantity in ("grad", "act", "adj"):
                for index in range(10):
                    for group, size in (("a", 4), ("b", 4 * size_b)):
                        scale = size / 4 if quantity == "grad" else np.sqrt(size / 4)
                        bump = shift if group == "b" and index < 3 and quantity in shifted else 0
                        values = (rng.normal(1.0, 0.1, steps) + bump) * scale
                        for step, value in enumerate(values):
                            rows.append(("r", epoch, step, layer, group, quantity, index, value,
                                         size))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def test_built_in_difference_is_found_and_nothing_else():
    stats = compare_groups(_table(seed=0, shift=0.5))
    hit = (stats["quantity"] == "grad") & (stats["index"] < 3)
    # a 5-sd shift with 12 vs 12 steps gives p ~ 1e-10 (t) and the minimum U p-value (~3.7e-7)
    assert stats.loc[hit, "t_significant"].all() and stats.loc[hit, "u_significant"].all()
    # BH bounds the expected share of false discoveries by 0.05 * 108/120; with 12 true ones a
    # seed may add one false discovery (seed 0 does: 1 of 13), never a sizeable share
    for test in ("t", "u"):
        false = int(stats.loc[~hit, f"{test}_significant"].sum())
        assert false / (false + 12) <= 0.1
    assert (stats.loc[hit, "hedges_g"] < -3).all()  # a - b is negative
    assert (stats.loc[hit, "rank_biserial"] == -1).all()
    assert len(stats) == 2 * 2 * 3 * 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identical_groups_give_no_discovery_after_fdr(seed):
    """Under the global null BH keeps P(any discovery) <= alpha = 0.05; fixed seeds."""
    stats = compare_groups(_table(seed=seed, shift=0.0, size_b=3))  # also checks normalisation
    assert not stats["t_significant"].any() and not stats["u_significant"].any()
    assert stats["t_p"].min() < 0.2  # the tests did run: 120 null p-values are not all large


def test_normalisation_by_group_size():
    frame = pd.DataFrame({"quantity": ["grad", "act", "adj"], "value": [8.0, 8.0, 8.0],
                          "group_size": [4, 4, 4]})  # fmt: skip
    assert normalise(frame)["normalised"].tolist() == [2.0, 4.0, 4.0]


def test_benjamini_hochberg_and_effect_sizes_by_hand():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2, np.nan]))
    np.testing.assert_allclose(q[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(q[4])
    # d = (2 - 5) / 1 = -3; correction 1 - 3 / (4 * 6 - 9) = 0.8
    assert hedges_g(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])) == pytest.approx(-2.4)


def test_compare_groups_rejects_a_single_group():
    frame = _table(seed=0, shift=0)
    with pytest.raises(InputError, match="at least two groups"):
        compare_groups(frame[frame["group"] == "a"])


def test_table_appends_atomically_and_truncates_for_resume(tmp_path):
    table = SpectraTable(tmp_path / "spectra.parquet")
    frame = _table(seed=0, shift=0)
    assert table.append(frame[frame["epoch"] == 0]) == len(frame) // 2
    assert table.append(frame[frame["epoch"] == 1]) == len(frame)
    pd.testing.assert_frame_equal(read_spectra(table.path), frame)
    table.truncate(1)
    assert set(table.read()["epoch"]) == {0}
    assert [p.name for p in tmp_path.iterdir()] == ["spectra.parquet"]  # no temporary left over
    with pytest.raises(InputError, match="not found"):
        read_spectra(tmp_path / "missing.parquet")


def test_output_layer_round_off_singular_value_is_excluded():
    """The softmax adjoint's rows sum to zero, so a C-class output layer's gradient has rank
    <= C - 1: its sigma_C is round-off (~1e-8 sigma_1 in float32) and must not be tested."""
    from harness.introspect.spectra import svdvals
    from harness.introspect.stats import rank_rtol

    gen = torch_generator(0)
    classes, width, n = 5, 16, 64
    acts = torch.randn(n, width, generator=gen)
    logits = torch.randn(n, classes, generator=gen, requires_grad=True)
    target = torch.randint(classes, (n,), generator=gen)
    torch.nn.functional.cross_entropy(logits, target).backward()
    sigma = svdvals(acts.T @ logits.grad)  # the output layer's weight gradient, float32
    assert sigma[classes - 1] < 1e-6 * sigma[0]  # round-off, not signal
    assert sigma[classes - 2] > rank_rtol() * sigma[0]
    rows = [("r", 0, s, "out", g, "grad", i, float(v) * (1 + 0.01 * s), 8)
            for s in range(6) for g in ("a", "b") for i, v in enumerate(sigma)]  # fmt: skip
    stats = compare_groups(pd.DataFrame(rows, columns=COLUMNS))
    assert sorted(stats["index"].unique()) == list(range(classes - 1))
    assert stats.attrs["excluded_below_rank_tolerance"] == 6 * 2
    from harness.introspect.stats import summarise

    assert summarise(stats)["excluded_below_rank_tolerance"] == 12


def test_rank_tolerance_follows_the_dtype():
    from harness.introspect.stats import rank_rtol

    assert rank_rtol(np.float32) == pytest.approx(1000 * 2**-23)
    assert rank_rtol(np.float64) == pytest.approx(1000 * 2**-52)
    with pytest.raises(InputError, match="rtol must be in"):
        compare_groups(_table(seed=0, shift=0.0), rtol=1.5)


def torch_generator(seed: int):
    import torch

    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
