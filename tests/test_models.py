"""FastSurferCNN v1: parameter counts against the reference, loss weights and loss against brute
force, and view aggregation on a hand-built example."""

import itertools

import numpy as np
import pytest
import torch

from harness.data.labels import lut_for_view
from harness.errors import InputError
from harness.models import (
    FastSurferCNN,
    FastSurferLoss,
    aggregate_views,
    count_parameters,
    fastsurfer_config,
    weight_mask,
)


def reference_v1_parameter_count(num_classes, in_channels=7, filters=64, k=5):
    """Parameters of FastSurfer v1, from the layer list of its reference implementation.

    Read from Deep-MI/FastSurfer v1 ``FastSurferCNN/models/networks.py`` (as stored for the fork
    nikhil153/FastSurfer at commit 401e9df26959cf837bfaa0e239b2c1134de2b71e) and the v1
    ``FastSurferCNN/models/sub_module.py`` (the three-convolution competitive blocks, conv2 1x1;
    its text was read from a code index that did not name the repository or commit):

    - CompetitiveDenseBlockInput: conv0 (in -> F, k x k, bias), conv1 (F -> F, k x k, bias),
      conv2 (F -> F, 1x1, bias), bn0 (in), bn1, bn2, bn3 (F; affine), one PReLU (1 slope).
    - CompetitiveDenseBlock: conv0, conv1 (F -> F, k x k, bias), conv2 (1x1, bias), bn1..bn3, PReLU.
    - FastSurferCNN: encode1 (input block), encode2-4, bottleneck, decode4..decode1 (blocks; pooling
      and unpooling have no parameters), ClassifierBlock conv (F -> classes, kernel_c = 1, bias).
    """
    conv = lambda cin, cout, kk: cin * cout * kk * kk + cout  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731 - affine weight and bias (running stats are buffers)
    prelu = 1
    input_block = (
        conv(in_channels, filters, k) + conv(filters, filters, k) + conv(filters, filters, 1)
    )
    input_block += bn(in_channels) + 3 * bn(filters) + prelu
    block = 2 * conv(filters, filters, k) + conv(filters, filters, 1) + 3 * bn(filters) + prelu
    blocks = 3 + 1 + 4  # encode2-4, bottleneck, decode1-4
    return input_block + blocks * block + conv(filters, num_classes, 1)


@pytest.mark.parametrize("view,classes", [("axial", 79), ("coronal", 79), ("sagittal", 51)])
def test_parameter_count_equals_reference(view, classes):
    model = FastSurferCNN(**fastsurfer_config(view))
    assert model.num_classes == classes
    assert count_parameters(model) == reference_v1_parameter_count(classes)
    expected = {79: 1_799_206, 51: 1_797_386}[classes]  # documented in docs/training.md
    assert count_parameters(model) == expected


def test_block_structure_matches_v1():
    model = FastSurferCNN(**fastsurfer_config("axial"))
    first = model.encoders[0].block
    assert first.conv2.kernel_size == (1, 1) and first.conv0.kernel_size == (5, 5)
    assert first.bn0.num_features == 7 and first.prelu.weight.numel() == 1
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 * 9 + 1 and all(c.bias is not None for c in convs)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 4 + 3 * 8 and all(b.affine for b in bns)


def test_tiny_forward_shape_and_errors():
    torch.manual_seed(0)
    model = FastSurferCNN(**fastsurfer_config("sagittal", "tiny"))
    assert model(torch.rand(2, 7, 16, 12)).shape == (2, 51, 16, 12)
    with pytest.raises(InputError, match="divisible"):
        model(torch.rand(1, 7, 10, 12))
    with pytest.raises(InputError, match="view"):
        fastsurfer_config("oblique")
    with pytest.raises(InputError, match="kernel_size"):
        FastSurferCNN(kernel_size=4)


def _brute_weights(classes, max_weight=5.0, max_edge_weight=5.0):
    values = sorted(set(classes.ravel().tolist()))
    counts = {v: int(sum(1 for c in classes.ravel() if c == v)) for v in values}
    sorted_counts = sorted(counts.values())
    n = len(sorted_counts)
    median = (
        sorted_counts[n // 2] if n % 2 else (sorted_counts[n // 2 - 1] + sorted_counts[n // 2]) / 2
    )
    out = np.zeros(classes.shape)
    for index in itertools.product(*(range(s) for s in classes.shape)):
        weight = min(median / counts[classes[index]], max_weight)
        edge = False
        for axis, size in enumerate(classes.shape):
            lo, hi = list(index), list(index)
            if index[axis] == 0:
                hi[axis] += 1
                diff = float(classes[tuple(hi)]) - classes[index]
            elif index[axis] == size - 1:
                lo[axis] -= 1
                diff = float(classes[index]) - classes[tuple(lo)]
            else:
                lo[axis] -= 1
                hi[axis] += 1
                diff = (float(classes[tuple(hi)]) - classes[tuple(lo)]) / 2
            edge |= diff != 0
        out[index] = weight + (max_edge_weight if edge else 0.0)
    return out


def test_weight_mask_matches_brute_force():
    rng = np.random.default_rng(0)
    classes = np.zeros((6, 5, 4), dtype=np.int64)
    classes[1:5, 1:4, 1:3] = 3
    classes[2:4, 2, 1] = 7  # a rare class: capped weight
    classes[0, 0, :] = rng.integers(0, 3, 4)
    got = weight_mask(classes, max_weight=5.0, max_edge_weight=5.0)
    np.testing.assert_allclose(got, _brute_weights(classes), rtol=1e-6)
    assert set(np.unique(got - weight_mask(classes, max_edge_weight=0.0))) == {0.0, 5.0}
    capped = weight_mask(classes, max_weight=0.5, max_edge_weight=0.0)
    np.testing.assert_allclose(capped, _brute_weights(classes, 0.5, 0.0), rtol=1e-6)
    assert capped.max() == pytest.approx(0.5) and capped.min() < 0.5  # the cap binds
    got2 = weight_mask(classes, max_weight=2.0, max_edge_weight=1.0)
    np.testing.assert_allclose(got2, _brute_weights(classes, 2.0, 1.0), rtol=1e-6)


def test_loss_matches_manual_computation():
    rng = np.random.default_rng(1)
    n, c, h, w = 2, 3, 2, 3
    logits = rng.normal(size=(n, c, h, w))
    target = rng.integers(0, c, size=(n, h, w))
    weights = rng.uniform(0.5, 3.0, size=(n, h, w))
    total, dice, ce = FastSurferLoss()(
        torch.tensor(logits, dtype=torch.float64),
        torch.tensor(target),
        torch.tensor(weights, dtype=torch.float64),
    )
    ce_sum, inter, denom = 0.0, np.zeros(c), np.zeros(c)
    for i, y, x in itertools.product(range(n), range(h), range(w)):
        z = logits[i, :, y, x]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        ce_sum += weights[i, y, x] * -np.log(p[target[i, y, x]])
        for k in range(c):
            onehot = 1.0 if target[i, y, x] == k else 0.0
            inter[k] += p[k] * onehot
            denom[k] += p[k] + onehot
    manual_dice = np.mean(1 - 2 * inter / (denom + 0.001))
    manual_ce = ce_sum / (n * h * w)
    assert dice.item() == pytest.approx(manual_dice, rel=1e-12)
    assert ce.item() == pytest.approx(manual_ce, rel=1e-12)
    assert total.item() == pytest.approx(manual_dice + manual_ce, rel=1e-12)


def _one_hot_probs(view, voxels):
    """(C, len(voxels), 1, 1) probabilities from per-voxel {FreeSurfer id: probability}."""
    lut = list(lut_for_view(view))
    probs = np.zeros((len(lut), len(voxels), 1, 1))
    for v, mapping in enumerate(voxels):
        for label, p in mapping.items():
            probs[lut.index(label), v, 0, 0] = p
    return probs


def test_aggregate_views_hand_built():
    # voxel 0: axial says L-hippocampus (17), coronal L-thalamus (10), sagittal the merged
    #   hippocampus (53 in the sagittal LUT) -> 17: 0.4 + 0.2, 53: 0.2, 10: 0.4 -> 17
    # voxel 1: axial 0.8 R-thalamus (49) + 0.2 background, coronal 0.6 L-thalamus + 0.4 bg,
    #   sagittal background -> 49: 0.32, 10: 0.24, 0: 0.08 + 0.16 + 0.2 = 0.44 -> 0
    axial = _one_hot_probs("axial", [{17: 1.0}, {49: 0.8, 0: 0.2}])
    coronal = _one_hot_probs("coronal", [{10: 1.0}, {10: 0.6, 0: 0.4}])
    sagittal = _one_hot_probs("sagittal", [{53: 1.0}, {0: 1.0}])
    labels = aggregate_views({"axial": axial, "coronal": coronal, "sagittal": sagittal})
    assert labels.ravel().tolist() == [17, 0]
    # without the sagittal view, voxel 1 goes to 49 (0.32 > 0.24 = 0.24)
    two = aggregate_views({"axial": axial, "coronal": coronal})
    assert two.ravel().tolist()[1] == 49
    torch_labels = aggregate_views(
        {
            "axial": torch.tensor(axial),
            "coronal": torch.tensor(coronal),
            "sagittal": torch.tensor(sagittal),
        }
    )
    assert torch_labels.ravel().tolist() == [17, 0]
    with pytest.raises(InputError, match="classes"):
        aggregate_views({"sagittal": axial})
    with pytest.raises(InputError, match="views"):
        aggregate_views({})
