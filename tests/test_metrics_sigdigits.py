import numpy as np
import pytest
import torch
from scipy import stats

from harness.errors import InputError
from harness.metrics import significant_digits, summarize


def _cnh_penalty(n, probability=0.95, confidence=0.95):
    chi2 = stats.chi2.interval(confidence, n - 1)[0]
    return 0.5 * np.log2((n - 1) / chi2) + np.log2(stats.norm.ppf((probability + 1) / 2))


def test_cnh_matches_hand_formula():
    rng = np.random.default_rng(0)
    n, sigma = 200, 2.0**-12
    samples = 1.0 + sigma * rng.standard_normal((n, 5))
    bits = significant_digits(samples, reference=np.ones(5))
    z = samples - 1.0
    expected = -np.log2(z.std(axis=0)) - _cnh_penalty(n)
    np.testing.assert_allclose(bits, expected, rtol=1e-12)
    # and close to the true noise level
    assert np.all(np.abs(bits - (12 - _cnh_penalty(n))) < 0.3)


def test_decimal_is_bits_times_log10_2():
    rng = np.random.default_rng(1)
    samples = 3.0 + 1e-4 * rng.standard_normal((30, 4))
    bits = significant_digits(samples, reference=3.0, basis=2)
    digits = significant_digits(samples, reference=3.0, basis=10)
    np.testing.assert_allclose(digits, bits * np.log10(2), rtol=1e-12)


def test_general_method_is_max_k_bounding_all_errors():
    samples = np.array([[1.0 + 2.0**-10], [1.0 - 2.0**-11], [1.0 + 2.0**-13]] * 10)
    bits = significant_digits(samples, reference=[1.0], method="general")
    assert bits[0] == pytest.approx(10.0)


def test_default_reference_is_sample_mean_not_nan():
    rng = np.random.default_rng(2)
    samples = torch.tensor(5.0 + 1e-3 * rng.standard_normal((16, 3, 2)))
    bits = significant_digits(samples)
    assert bits.shape == (3, 2)
    assert np.all(np.isfinite(bits))
    np.testing.assert_allclose(bits, significant_digits(samples.numpy(), samples.numpy().mean(0)))


def test_relative_error_undefined_at_zero_reference():
    samples = np.array([[0.0, 1.0], [1e-9, 1.0 + 1e-9], [-1e-9, 1.0 - 1e-9]])
    bits = significant_digits(samples, reference=[0.0, 1.0])
    assert np.isnan(bits[0]) and np.isfinite(bits[1])
    abs_bits = significant_digits(samples, reference=[0.0, 1.0], error="absolute")
    assert np.all(np.isfinite(abs_bits))


def test_cancellation_loses_the_predicted_bits():
    """(1 + x) - 1 in fp32 with MCA random rounding (t = 24) of the addition's exact result.

    x = 2^-10 + 2^-24 is an fp32 number, but 1 + x needs 25 bits: it lies exactly half-way between
    the fp32 neighbours 1 + 2^-10 and 1 + 2^-10 + 2^-23. rr adds U(-1/2, 1/2) * 2^(e - 24) with
    e(1 + x) = 1 (half an ulp at most) to the exact sum and rounds to nearest, so each neighbour comes
    with probability 1/2. The subtraction of 1 is exact (Sterbenz): the result's relative error is
    +-2^-24 / x ~ 2^-14 with probability 1/2 each, its standard deviation 2^-14 / (1 + 2^-14). The
    cancellation keeps about 14 of fp32's 24 bits: theory predicts -log2(sd) bits before the CNH
    confidence penalty.
    """
    rng = np.random.default_rng(3)
    n = 400
    x = np.float32(2.0**-10 + 2.0**-24)
    exact_sum = 1.0 + np.float64(x)
    assert np.float64(np.float32(exact_sum)) != exact_sum  # the addition is inexact in fp32
    e = np.frexp(exact_sum)[1]
    noise = 2.0 ** (e - 24) * rng.uniform(-0.5, 0.5, size=(n, 1))
    perturbed = (exact_sum + noise).astype(np.float32)
    result = (perturbed - np.float32(1.0)).astype(np.float64)
    bits = significant_digits(result, reference=[float(x)])[0]
    sd = np.std(result[:, 0] / float(x) - 1.0)
    assert sd == pytest.approx(2.0**-14, rel=0.01)
    assert bits == pytest.approx(-np.log2(sd) - _cnh_penalty(n), abs=1e-9)
    assert bits == pytest.approx(14 - _cnh_penalty(n), abs=0.05)  # the theory's prediction
    assert 24 - bits > 9  # about ten bits lost to cancellation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"basis": 3}, "basis"),
        ({"error": "squared"}, "error must be one of"),
        ({"method": "magic"}, "method must be one of"),
        ({"probability": 1.5}, "probability"),
        ({"reference": np.ones((4, 3))}, "reference must be"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(InputError, match=match):
        significant_digits(np.ones((4, 3)), **kwargs)


def test_bad_samples():
    with pytest.raises(InputError, match="M >= 2"):
        significant_digits(np.ones((1, 3)))
    with pytest.raises(InputError, match="NaN"):
        significant_digits(np.array([[1.0], [np.nan]]))


def test_summarize_ignores_nan():
    s = summarize([1.0, np.nan, 3.0])
    assert s == {"min": 1.0, "mean": 2.0, "median": 2.0, "max": 3.0, "count": 2}
    assert summarize([np.nan])["count"] == 0
