"""The merge methods' math on small tensors: task arithmetic with lambda, TIES trimming and sign election,
DARE's rescaling (in expectation over seeds), weighted averaging, and the registry."""

import pytest
import torch

from models.merge import METHODS, dare_drop, magnitude_trim, sign_consensus
from models.merge.merge import tensor_generator


def _make(name, **kw):
    return METHODS[name](**kw)


def test_registry_has_every_method():
    assert set(METHODS) == {"linear", "task_arithmetic", "ties", "dare_linear", "dare_ties"}
    assert not METHODS["linear"].needs_base and METHODS["ties"].needs_base


def test_task_arithmetic_with_lambda_and_weights():
    base = torch.tensor([1.0, -1.0, 0.5])
    tuned = [base + torch.tensor([1.0, 2.0, 0.0]), base + torch.tensor([-0.5, 1.0, 4.0])]
    out = _make("task_arithmetic", lam=0.5).merge(base, tuned, [1.0, 2.0], [1.0, 1.0])
    # θ0 + λ (1·τ1 + 2·τ2) = base + 0.5·[0, 4, 8]
    torch.testing.assert_close(out, base + torch.tensor([0.0, 2.0, 4.0]))
    normalized = _make("task_arithmetic", lam=1.0, normalize=True).merge(base, tuned, [1.0, 3.0], [1.0, 1.0])
    torch.testing.assert_close(normalized, base + (tuned[0] - base + 3 * (tuned[1] - base)) / 4)


def test_single_model_is_base_plus_lambda_tau():
    base = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    tau = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    for name in ("task_arithmetic", "dare_linear"):
        out = _make(name, lam=0.7).merge(base, [base + tau], [1.0], [1.0])
        torch.testing.assert_close(out, base + 0.7 * tau)


def test_magnitude_trim_keeps_the_largest_entries():
    delta = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0]])
    torch.testing.assert_close(magnitude_trim(delta, 2 / 6), torch.tensor([[0.0, -5.0, 0.0], [2.0, 0.0, 0.0]]))
    assert magnitude_trim(delta, 1.0) is delta
    assert int((magnitude_trim(torch.randn(1000), 0.2) != 0).sum()) == 200


def test_ties_sign_election_and_disjoint_mean():
    base = torch.zeros(4)
    # per element: mass (1+2−4) < 0 → minus wins; (3−1+0) > 0; (−1−1+5) > 0; (0.5−0.5) ties count as +
    deltas = torch.tensor([[1.0, 3.0, -1.0, 0.5], [2.0, -1.0, -1.0, -0.5], [-4.0, 0.0, 5.0, 0.0]])
    mask = sign_consensus(deltas)
    assert mask.tolist() == [
        [False, True, False, True],
        [False, False, False, False],
        [True, False, True, False],
    ]
    out = _make("ties", lam=1.0).merge(base, list(deltas), [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    # disjoint mean over the agreeing models only: [−4/1, 3/1, 5/1, 0.5/1]
    torch.testing.assert_close(out, torch.tensor([-4.0, 3.0, 5.0, 0.5]))
    summed = _make("ties", lam=2.0, normalize=False).merge(base, list(deltas), [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    torch.testing.assert_close(summed, 2 * torch.tensor([-4.0, 3.0, 5.0, 0.5]))


def test_ties_trims_before_electing_and_weights_count_in_the_election():
    base = torch.zeros(3)
    a, b = torch.tensor([0.1, 4.0, -3.0]), torch.tensor([-2.0, 0.2, 1.0])
    # density 2/3 trims a's 0.1 and b's 0.2: the first element is then b's alone (−2), the second a's (4)
    out = _make("ties").merge(base, [a, b], [1.0, 1.0], [2 / 3, 2 / 3])
    # third element: a −3 against b +1 → minus elected, only a kept
    torch.testing.assert_close(out, torch.tensor([-2.0, 4.0, -3.0]))
    # weight 4 on b makes its +1 outweigh a's −3 (4·1 > 3): plus is elected, b's value kept
    weighted = _make("ties").merge(base, [a, b], [1.0, 4.0], [2 / 3, 2 / 3])
    torch.testing.assert_close(weighted[2], torch.tensor(1.0))


def test_dare_rescaling_is_unbiased_over_seeds():
    delta = torch.linspace(-1.0, 1.0, 50)
    density = 0.25
    draws = torch.stack([dare_drop(delta, density, torch.Generator().manual_seed(s)) for s in range(4000)])
    kept = draws != 0
    # every kept entry is rescaled by exactly 1/density; the drop rate is 1 − density; the mean is the delta
    nz = delta != 0
    torch.testing.assert_close(draws[kept], (delta.expand_as(draws) / density)[kept])
    assert abs(kept[:, nz].float().mean().item() - density) < 0.01
    assert (draws.mean(dim=0) - delta).abs().max().item() < 0.1
    assert dare_drop(delta, 1.0, None) is delta


def test_dare_methods_drop_and_are_reproducible():
    base = torch.zeros(2000)
    tuned = [torch.ones(2000), -0.5 * torch.ones(2000)]
    m = _make("dare_linear", lam=1.0)
    one = m.merge(base, tuned, [1.0, 1.0], [0.5, 0.5], tensor_generator(3, "w"))
    two = m.merge(base, tuned, [1.0, 1.0], [0.5, 0.5], tensor_generator(3, "w"))
    other = m.merge(base, tuned, [1.0, 1.0], [0.5, 0.5], tensor_generator(4, "w"))
    torch.testing.assert_close(one, two)
    assert not torch.equal(one, other)
    assert set(torch.unique(one).tolist()) <= {0.0, 2.0, -1.0, 1.0}
    assert abs(one.mean().item() - 0.5) < 0.1  # E = 1 − 0.5
    ties = _make("dare_ties", lam=1.0).merge(base, tuned, [1.0, 1.0], [0.5, 0.5], tensor_generator(3, "w"))
    # sign election: where both survive (+2 and −1) plus wins, so no element is ever 1 (= 2 − 1)
    assert set(torch.unique(ties).tolist()) <= {0.0, 2.0, -1.0}


@pytest.mark.parametrize("name", ["dare_ties", "ties"])
def test_consensus_methods_at_full_density_agree(name):
    g = torch.Generator().manual_seed(5)
    base = torch.randn(6, 7, generator=g)
    tuned = [base + torch.randn(6, 7, generator=g) for _ in range(3)]
    out = _make(name, lam=1.0, normalize=False).merge(base, tuned, [1.0, 0.5, 2.0], [1.0, 1.0, 1.0])
    deltas = torch.stack([t - base for t in tuned]) * torch.tensor([1.0, 0.5, 2.0]).view(3, 1, 1)
    elected = torch.where(deltas.sum(0) >= 0, 1.0, -1.0)
    expected = base + (deltas * (deltas.sign() == elected)).sum(0)
    torch.testing.assert_close(out, expected)


def test_linear_is_a_weighted_average_of_the_models():
    tuned = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])]
    torch.testing.assert_close(_make("linear").merge(None, tuned, [1.0, 3.0], [1.0, 1.0]), torch.tensor([2.5, -1.0]))
    plain = _make("linear", normalize=False).merge(None, tuned, [1.0, 3.0], [1.0, 1.0])
    torch.testing.assert_close(plain, torch.tensor([10.0, -4.0]))
