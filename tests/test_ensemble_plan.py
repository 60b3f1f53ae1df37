import pytest

from harness.ensemble.layout import member_factor
from harness.ensemble.plan import parse_factor, plan_ensemble
from harness.errors import InputError
from harness.perturb import Mode
from harness.train.config import Engine


def test_plan_names_and_factors():
    members = plan_ensemble({"seed": 3, "mca-sr": 2, "seed:init": 2})
    names = [m.name for m in members]
    assert names == [
        "baseline",
        "seed-01",
        "seed-02",
        "seed-03",
        "mca-sr-01",
        "mca-sr-02",
        "seed-i-01",
        "seed-i-02",
    ]
    for m in members:
        assert member_factor(m.name) == m.factor
    sr = members[4]
    assert (sr.mode, sr.engine, sr.member_index, sr.mca_seed) == (Mode.SR, Engine.OP, 0, 1)
    assert (sr.to_dict()["mode"], sr.to_dict()["engine"]) == ("sr", "op")
    seed = members[2]
    assert (seed.mode, seed.engine, seed.member_index, seed.vary) == (
        Mode.IEEE,
        Engine.NONE,
        2,
        ("init", "data", "augment"),
    )


def test_parse_factor_subsets():
    assert parse_factor("seed:init+data")[:2] == ("seed-id", ("init", "data"))
    assert parse_factor("kernel-rr")[2:] == (Mode.RR, Engine.KERNEL)


@pytest.mark.parametrize(
    "factors, match",
    [
        ({"seed:colour": 3}, "seed factor parts"),
        ({"fuzz": 3}, "factor must be"),
        ({"seed": 1}, "at least 2"),
        ({}, "at least one"),
    ],
)
def test_plan_errors(factors, match):
    with pytest.raises(InputError, match=match):
        plan_ensemble(factors)
