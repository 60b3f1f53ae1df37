"""SpectralProbe against brute force: per-sample gradients (torch.func), dense fp64 SVDs, F.unfold."""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from harness.errors import InputError
from harness.introspect import OnUnknown, SpectralProbe
from harness.introspect.spectra import qr_core_svdvals

LABELS = torch.tensor([0, 1, 1, 0, 1, 0, 0])  # 7 samples, groups of 4 and 3


class Flat(nn.Module):
    def __init__(self, body: nn.Module, features: int, classes: int = 3):
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))


def _models():
    torch.manual_seed(0)
    return {
        "linear": (
            nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)),
            torch.randn(7, 5),
        ),
        "conv2d": (
            Flat(nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(inplace=True)), 36),
            torch.randn(7, 2, 6, 6),
        ),
        "conv1d": (
            Flat(nn.Conv1d(2, 4, 3, dilation=2, padding=2, padding_mode="reflect"), 36),
            torch.randn(7, 2, 9),
        ),
        "conv3d": (
            Flat(nn.Conv3d(2, 4, 2, padding="same", groups=2), 4 * 27),
            torch.randn(7, 2, 3, 3, 3),
        ),
    }


class RecurrentNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = kind(3, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1] + out.mean(1))


def _loss(out, y):
    return F.cross_entropy(out, y, reduction="sum")


def _per_sample_vmap(model, x, y):
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi, yi):
        return _loss(functional_call(model, p, (xi[None],)), yi[None])

    return vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)


def _per_sample_loop(model, x, y):
    grads = {k: [] for k, _ in model.named_parameters()}
    for i in range(x.shape[0]):
        model.zero_grad()
        _loss(model(x[i : i + 1]), y[i : i + 1]).backward()
        for k, p in model.named_parameters():
            grads[k].append(p.grad.clone())
    model.zero_grad()
    return {k: torch.stack(v) for k, v in grads.items()}


def _probe_pass(model, x, y, **kwargs):
    """One probed forward/backward; returns the probe (hooks still attached) and full grads."""
    probe = SpectralProbe(model, **kwargs)
    probe.attach()
    probe.set_groups(LABELS)
    model.zero_grad()
    _loss(model(x), y).backward()
    return probe, {k: p.grad.clone() for k, p in model.named_parameters()}


def _check_group_gradients(model, x, y, per_sample):
    probe, full = _probe_pass(model, x, y)
    try:
        for handler in probe.handlers:
            totals = None
            for label in (0, 1):
                mask = LABELS == label
                got = handler.group_gradients(mask)
                for param, value in got.items():
                    key = f"{handler.name}.{param}"
                    expected = per_sample[key][mask].sum(0)
                    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-11)
                totals = got if totals is None else {p: totals[p] + got[p] for p in got}
            for param, value in totals.items():
                torch.testing.assert_close(value, full[f"{handler.name}.{param}"])
    finally:
        probe.close()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # intended
@pytest.mark.parametrize("kind", ["linear", "conv2d", "conv1d", "conv3d"])
def test_group_gradient_is_sum_of_per_sample_gradients(kind):
    model, x = _models()[kind]
    model, x = model.double(), x.double()
    y = torch.arange(7) % 3
    _check_group_gradients(model, x, y, _per_sample_vmap(model, x, y))


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_group_gradients_match_per_sample_gradients(kind):
    torch.manual_seed(1)
    model = RecurrentNet(kind).double()
    x, y = torch.randn(7, 4, 3, dtype=torch.float64), torch.arange(7) % 3
    _check_group_gradients(model, x, y, _per_sample_loop(model, x, y))


def _dense_spectra(handler, x_group_rows, d_group_rows, grad):
    return {
        "grad": torch.linalg.svdvals(grad.reshape(grad.shape[0], -1)),
        "act": torch.linalg.svdvals(x_group_rows),
        "adj": torch.linalg.svdvals(d_group_rows),
    }


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 2e-4)])
def test_spectra_equal_dense_fp64_svd(dtype, rtol):
    """Probe values vs dense fp64 SVDs of brute-force group matrices (conv patches by F.unfold)."""
    models = _models()
    conv_model, x = models["conv2d"]
    conv_model, x = conv_model.to(dtype), x.to(dtype)
    y = torch.arange(7) % 3
    probe, _ = _probe_pass(conv_model, x, y, top_k=None)
    conv, head = probe.handlers[0], probe.handlers[1]
    x64 = x.double()
    with torch.no_grad():
        feats = torch.flatten(torch.relu(conv.module.double()(x64)), 1)
    conv.module.to(dtype)
    # adjoints recorded by the hooks are the brute-force ones; only the SVD path is under test
    d_conv = conv.calls[0].grads[0].double()
    d_head = head.calls[0].grads[0].double()
    expected = {}
    for label, name in ((0, "0"), (1, "1")):
        mask = LABELS == label
        patches = F.unfold(x64[mask], 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 18)
        d_rows = d_conv[mask].permute(0, 2, 3, 1).reshape(-1, 4)
        g = d_rows.T @ patches
        expected[("body.0.weight", name)] = _dense_spectra(conv, patches, d_rows, g)
        a_h, d_h = feats[mask], d_head[mask]
        expected[("head.weight", name)] = _dense_spectra(head, a_h, d_h, d_h.T @ a_h)
    probe.step(0, 0)
    probe.close()
    table = probe.table()
    assert set(table["group"]) == {"0", "1"}
    for (layer, group, quantity), rows in table.groupby(["layer", "group", "quantity"]):
        want = expected[(layer, group)][quantity]
        got = torch.tensor(rows.sort_values("index")["value"].to_numpy())
        want = (
            torch.cat([want, want.new_zeros(len(got) - len(want))])
            if len(got) > len(want)
            else want
        )
        torch.testing.assert_close(got, want, rtol=0, atol=rtol * float(want[0]))
        assert (rows["group_size"] == int((LABELS == int(group)).sum())).all()


@pytest.mark.parametrize("n,h_in,h_out", [(8, 300, 200), (5, 40, 1000), (50, 30, 20)])
def test_qr_core_equals_dense_svd(n, h_in, h_out):
    gen = torch.Generator().manual_seed(n)
    a = torch.randn(n, h_in, generator=gen, dtype=torch.float64)
    d = torch.randn(n, h_out, generator=gen, dtype=torch.float64)
    dense = torch.linalg.svdvals(a.T @ d)
    core = qr_core_svdvals(a, d)
    assert core.shape == dense.shape
    torch.testing.assert_close(core, dense, rtol=0, atol=1e-10 * float(dense[0]))
    assert (core[min(n, h_in, h_out) :] == 0).all()
    torch.testing.assert_close(qr_core_svdvals(a, d, k=3), dense[:3], rtol=1e-12, atol=0)


def _train(model, batches, probe_kwargs=None):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    probe = SpectralProbe(model, **probe_kwargs) if probe_kwargs is not None else None
    if probe:
        probe.attach()
    for step, (x, y) in enumerate(batches):
        if probe:
            probe.set_groups(y % 2)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if probe:
            probe.step(0, step)
        opt.step()
    if probe:
        probe.close()
    return [p.detach().clone() for p in model.parameters()], probe


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.rnn = nn.GRU(4 * 6, 8, batch_first=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))  # (N, 4, 6, 6) -> sequence over rows
        out, _ = self.rnn(h.permute(0, 2, 1, 3).flatten(2))
        return self.fc(out[:, -1])


def test_training_with_probe_is_bitwise_identical():
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(6, 1, 6, 6, generator=gen), torch.randint(0, 4, (6,), generator=gen))
               for _ in range(5)]  # fmt: skip
    torch.manual_seed(0)
    plain, _ = _train(Mixed(), batches)
    torch.manual_seed(0)
    probed, probe = _train(Mixed(), batches, {"top_k": 10, "every": 2})
    assert all(torch.equal(a, b) for a, b in zip(plain, probed, strict=True))
    steps = sorted(probe.table()["step"].unique())
    assert steps == [0, 2, 4]  # every=2
    assert set(probe.table()["layer"]) == {"conv.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                           "fc.weight"}  # fmt: skip


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_no_hook_leak_after_exit_error_and_many_steps():
    model = Mixed()
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 3])
    with pytest.raises(RuntimeError, match="boom"):
        with SpectralProbe(model) as probe:
            assert _hook_count(model) == 3  # conv, rnn, fc (bn skipped)
            raise RuntimeError("boom")
    assert _hook_count(model) == 0
    with SpectralProbe(model, top_k=2) as probe:
        for step in range(12):
            probe.set_groups(y % 2)
            F.cross_entropy(model(x), y).backward()
            probe.step(0, step)
            assert all(not h.calls and not h._tensor_handles for h in probe.handlers)
        probe.pop_table()
        with torch.no_grad():  # evaluation passes are not captured
            model(x)
        assert all(not h.calls for h in probe.handlers)
    assert _hook_count(model) == 0
    del probe
    gc.collect()


def test_unknown_layer_policy_and_bad_input():
    model = Mixed()
    assert "bn" not in SpectralProbe(model, unknown="skip").layer_names
    with pytest.raises(InputError, match="'bn'.*no spectral handler"):
        SpectralProbe(model, unknown=OnUnknown.RAISE)
    with pytest.raises(InputError, match="no spectral handler"):
        SpectralProbe(model, layers=["bn"])
    with pytest.raises(InputError, match="not found"):
        SpectralProbe(model, layers=["nope"])
    with pytest.raises(InputError, match="quantities"):
        SpectralProbe(model, quantities=["hessian"])
    with pytest.raises(InputError, match="single-layer"):
        SpectralProbe(nn.LSTM(3, 4, num_layers=2))
    with pytest.raises(InputError, match="every"):
        SpectralProbe(model, every=0)
    with SpectralProbe(model) as probe:
        probe.set_groups([0, 1, 0])  # 3 labels for a batch of 4
        F.cross_entropy(model(torch.randn(4, 1, 6, 6)), torch.tensor([0, 1, 2, 3])).backward()
        with pytest.raises(InputError, match="one entry per sample"):
            probe.step()
    assert _hook_count(model) == 0


@pytest.mark.parametrize(
    "dims,kernel,stride,padding,dilation",
    [(1, (3,), (2,), (1,), (2,)), (3, (2, 3, 1), (1, 2, 1), (1, 0, 1), (1, 1, 2))],
)
def test_unfolded_patches_give_conv_weight_gradient_and_gram_spectra(
    dims, kernel, stride, padding, dilation
):
    from harness.introspect.spectra import (
        ConvGeometry,
        batched_gram,
        conv_grad_svdvals,
        conv_group_grad,
        gram_svdvals,
        unfold_patches,
    )  # fmt: skip

    geometry = ConvGeometry(dims, kernel, stride, padding, dilation)
    gen = torch.Generator().manual_seed(dims)
    x = torch.randn(3, 2, *([7] * dims), generator=gen, dtype=torch.float64)
    conv = getattr(F, f"conv{dims}d")
    weight = torch.randn(4, 2, *kernel, generator=gen, dtype=torch.float64)
    out = conv(x, weight, stride=stride, padding=padding, dilation=dilation)
    delta = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    patches = unfold_patches(x, geometry)  # (N, L, C*K)
    rows_d = delta.reshape(3, 4, -1).transpose(1, 2)
    grad = torch.einsum("nlo,nlc->oc", rows_d, patches)
    expected = conv_group_grad(x, delta, weight.shape, geometry).reshape(4, -1)
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(
        conv_grad_svdvals(x, delta, weight.shape, geometry, k=2), torch.linalg.svdvals(grad)[:2]
    )
    dense = torch.linalg.svdvals(patches.reshape(-1, patches.shape[-1]))
    via_gram = gram_svdvals(batched_gram(patches).sum(0))
    torch.testing.assert_close(via_gram, dense, rtol=0, atol=1e-7 * float(dense[0]))


@pytest.mark.cuda
def test_probe_on_cuda_matches_cpu_and_keeps_training_bitwise():
    import copy

    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 1, 6, 6, generator=gen), torch.randint(0, 4, (6,), generator=gen))
               for _ in range(3)]  # fmt: skip
    torch.manual_seed(0)
    cpu_model = Mixed()
    cuda_model = copy.deepcopy(cpu_model).cuda()
    cuda_batches = [(x.cuda(), y.cuda()) for x, y in batches]
    _, cpu_probe = _train(cpu_model, batches[:1], {"top_k": 3})
    _, cuda_probe = _train(cuda_model, cuda_batches[:1], {"top_k": 3})
    a, b = cpu_probe.table(), cuda_probe.table()
    assert len(a) == len(b) and (a["layer"] == b["layer"]).all()
    torch.testing.assert_close(
        torch.tensor(b["value"].to_numpy()), torch.tensor(a["value"].to_numpy()),
        rtol=1e-3, atol=1e-5,
    )  # fmt: skip
    from harness.perturb.seeds import deterministic_algorithms

    with deterministic_algorithms(True, warn_only=True):  # cuDNN's own run-to-run variation off
        torch.manual_seed(0)
        plain, _ = _train(Mixed().cuda(), cuda_batches)
        torch.manual_seed(0)
        probed, _ = _train(Mixed().cuda(), cuda_batches, {"top_k": 10})
    assert all(torch.equal(p, q) for p, q in zip(plain, probed, strict=True))


def test_batchnorm_caveat_names_the_coupled_layers():
    """Layers before a training-mode batch norm get a caveat; after it, or in eval mode, none."""
    from torch import nn

    from harness.introspect.probe import SpectralProbe, layers_before_training_batchnorm

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    assert layers_before_training_batchnorm(model, ["0", "3"]) == ["0"]
    (caveat,) = SpectralProbe(model).caveats()
    assert "['0']" in caveat and "batch norm in training mode" in caveat
    model.eval()
    assert SpectralProbe(model).caveats() == []
    assert SpectralProbe(nn.Sequential(nn.Linear(4, 2))).caveats() == []
