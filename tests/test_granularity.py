import pytest

from harness.errors import InputError
from harness.experiments.granularity import GranularityConfig, run_granularity


def test_op_and_kernel_level_variability_agree_in_magnitude():
    frame = run_granularity(GranularityConfig(repeats=6, channels=4, size=12))
    med = frame.pivot(index="quantity", columns="granularity", values="sig_bits_median")
    assert set(med.index) == {"output", "conv1.weight.grad", "conv2.weight.grad"}
    # both perturb (fewer than fp32's 24 bits) yet keep most bits of this short computation
    assert (med < 23.5).all().all() and (med > 12).all().all()
    # kernel level rounds every inner add/mul: at least as much variability as op level ...
    assert (med["kernel"] <= med["op"] + 0.5).all()
    # ... but of the same order (a few bits: sqrt of the accumulation length)
    assert ((med["op"] - med["kernel"]) < 8).all()


def test_granularity_rejects_ud():
    with pytest.raises(InputError, match="mode must be"):
        run_granularity(GranularityConfig(mode="ud"))
