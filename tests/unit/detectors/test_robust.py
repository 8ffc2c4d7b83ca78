"""Noise-robust training machinery (logsieve.detectors.neural.robust) and label-noise injection."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from detector_fixtures import make_windows
from torch import nn

from logsieve.detectors.neural.robust import (
    NetworkGroup,
    SupervisedTorchDetector,
    _kept_mean_factor,
    class_forget_rates,
    class_small_loss_keep,
    confident_off_diagonal,
    flip_labels,
    forget_schedule,
    generalized_cross_entropy,
    labelled_distinct,
    small_loss_keep,
)
from logsieve.detectors.registry import create_detector
from logsieve.errors import LogsieveError


# ---------------------------------------------------------------------- flip_labels
def _labels(n_pos: int = 30, n_neg: int = 270, n_null: int = 20) -> pl.DataFrame:
    lab = [1] * n_pos + [0] * n_neg + [None] * n_null
    rng = np.random.default_rng(3)
    order = rng.permutation(len(lab))
    return pl.DataFrame(
        {"window_id": [f"w{i}" for i in range(len(lab))], "label": [lab[i] for i in order]}
    ).with_columns(pl.col("label").cast(pl.Int8))


def test_flip_labels_flips_exactly_the_rate_of_labelled_windows():
    df = _labels()
    out, mask = flip_labels(df, 0.1, seed=0, return_mask=True)
    assert mask.sum() == round(0.1 * 300)  # 300 labelled windows, nulls not eligible
    before, after = df.get_column("label"), out.get_column("label")
    assert out.schema["label"] == pl.Int8
    assert after.null_count() == before.null_count()
    assert not mask[before.is_null().to_numpy()].any()  # null labels never touched
    changed = (before != after).fill_null(False).to_numpy()
    np.testing.assert_array_equal(changed, mask)
    assert df.get_column("label").equals(before)  # input not modified


def test_flip_labels_goes_both_ways_and_is_uniform_over_classes():
    df = _labels(n_pos=500, n_neg=500, n_null=0)
    out, mask = flip_labels(df, 0.2, seed=1, return_mask=True)
    was = df.get_column("label").to_numpy()
    to_pos = int((mask & (was == 0)).sum())
    to_neg = int((mask & (was == 1)).sum())
    assert to_pos + to_neg == 200 and to_pos > 50 and to_neg > 50


def test_flip_labels_is_deterministic_and_seeded():
    df = _labels()
    a = flip_labels(df, 0.1, seed=5)
    b = flip_labels(df, 0.1, seed=5)
    c = flip_labels(df, 0.1, seed=6)
    assert a.equals(b)
    assert not a.equals(c)
    assert flip_labels(df, 0.0, seed=5).equals(df)


def test_flip_labels_rejects_bad_input():
    df = _labels()
    with pytest.raises(LogsieveError, match="rate"):
        flip_labels(df, 1.5, seed=0)
    with pytest.raises(LogsieveError, match="rate"):
        flip_labels(df, True, seed=0)
    with pytest.raises(LogsieveError, match="label"):
        flip_labels(df.drop("label"), 0.1, seed=0)
    with pytest.raises(LogsieveError, match="0, 1"):
        flip_labels(df.with_columns(pl.lit(2, dtype=pl.Int8).alias("label")), 0.1, seed=0)


# ---------------------------------------------------------------------- selection
def test_forget_schedule_ramps_linearly_then_stays():
    assert forget_schedule(1, 0.2, 4) == 0.0
    assert forget_schedule(3, 0.2, 4) == pytest.approx(0.1)
    assert forget_schedule(5, 0.2, 4) == pytest.approx(0.2)
    assert forget_schedule(50, 0.2, 4) == pytest.approx(0.2)
    assert forget_schedule(1, 0.2, 0) == pytest.approx(0.2)


def test_small_loss_keep_unweighted_drops_the_largest_losses():
    loss = torch.tensor([0.1, 5.0, 0.3, 2.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8])
    keep = small_loss_keep(loss, None, 0.2)
    np.testing.assert_array_equal(keep.numpy(), [1, 0, 1, 0, 1, 1, 1, 1, 1, 1])
    assert torch.equal(small_loss_keep(loss, None, 0.0), torch.ones(10))


def test_small_loss_keep_weighted_drops_a_share_of_the_weight():
    loss = torch.tensor([3.0, 2.0, 1.0, 0.5])
    weight = torch.tensor([1.0, 4.0, 3.0, 2.0])  # total 10, drop 3.5
    keep = small_loss_keep(loss, weight, 0.35)
    # largest loss (w 1) fully dropped, then 2.5 of the next one (w 4)
    np.testing.assert_allclose(keep.numpy(), [0.0, 1.5 / 4.0, 1.0, 1.0])
    assert float((keep * weight).sum()) == pytest.approx(6.5)


def test_kept_mean_factor_turns_the_trainer_mean_into_the_kept_mean():
    loss = torch.tensor([3.0, 2.0, 1.0, 0.5])
    weight = torch.tensor([1.0, 4.0, 3.0, 2.0])
    keep = small_loss_keep(loss, weight, 0.35)
    returned = loss * _kept_mean_factor(keep, weight)
    trainer_mean = float((returned * weight).sum() / weight.sum())  # what train_module computes
    expected = float((loss * keep * weight).sum() / (keep * weight).sum())
    assert trainer_mean == pytest.approx(expected)


def test_generalized_cross_entropy_limits():
    logits = torch.tensor([[2.0, -1.0], [0.3, 0.1], [-1.0, 1.5]], dtype=torch.float64)
    target = torch.tensor([0, 1, 1])
    ce = F.cross_entropy(logits, target, reduction="none")
    np.testing.assert_allclose(
        generalized_cross_entropy(logits, target, 1e-6).numpy(), ce.numpy(), rtol=1e-4
    )
    p_y = torch.softmax(logits, 1).gather(1, target[:, None])[:, 0]
    np.testing.assert_allclose(
        generalized_cross_entropy(logits, target, 1.0).numpy(), (1 - p_y).numpy(), rtol=1e-6
    )


def test_labelled_distinct_keeps_both_labels_of_a_sequence():
    df = pl.DataFrame(
        {"event_ids": [["E1", "E2"], ["E1", "E2"], ["E1", "E2"], ["E3"]], "label": [0, 1, 0, 1]},
        schema={"event_ids": pl.List(pl.String), "label": pl.Int8},
    )
    distinct, labels, counts = labelled_distinct(df)
    assert distinct.get_column("event_ids").to_list() == [["E1", "E2"], ["E1", "E2"], ["E3"]]
    assert labels.tolist() == [0, 1, 1]
    assert counts.tolist() == [2.0, 1.0, 1.0]


# ---------------------------------------------------------------------- training step
class _Linear(SupervisedTorchDetector):
    """Minimal supervised detector over a feature vector column ``x`` (for step tests)."""

    def build_network(self) -> nn.Module:
        return nn.Linear(3, 2)

    def network_logits(self, net, batch):
        return net(batch["x"])


def _batch(n: int = 10) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(n, 3, generator=g),
        "label": torch.randint(0, 2, (n,), generator=g),
        "weight": torch.rand(n, generator=g) + 0.5,
    }


def test_coteaching_step_cross_updates_on_the_peer_selection():
    det = _Linear(robust="coteaching", forget_rate=0.3, ramp_epochs=0, selection="global")
    torch.manual_seed(0)
    module = NetworkGroup([det.build_network(), det.build_network()]).train()
    batch = _batch()
    det._epoch = 1
    out = det.training_step(module, batch)
    l0 = F.cross_entropy(module.nets[0](batch["x"]), batch["label"], reduction="none")
    l1 = F.cross_entropy(module.nets[1](batch["x"]), batch["label"], reduction="none")
    k0 = small_loss_keep(l0, batch["weight"], 0.3)
    k1 = small_loss_keep(l1, batch["weight"], 0.3)
    expected = l0 * _kept_mean_factor(k1, batch["weight"]) + l1 * _kept_mean_factor(
        k0, batch["weight"]
    )
    torch.testing.assert_close(out, expected)
    # network 0 gets no gradient from the examples its PEER dropped
    dropped_by_1 = k1 == 0
    assert dropped_by_1.any()
    module.zero_grad()
    (out * dropped_by_1).sum().backward()
    assert module.nets[0].weight.grad.abs().sum() == 0


def test_validation_loss_is_each_networks_own_small_loss_mean():
    det = _Linear(robust="coteaching", forget_rate=0.3, ramp_epochs=0, selection="global")
    module = NetworkGroup([det.build_network(), det.build_network()]).eval()
    batch = _batch()
    out = det.training_step(module, batch)
    parts = []
    for n in module.nets:
        loss = F.cross_entropy(n(batch["x"]), batch["label"], reduction="none")
        parts.append(
            loss * _kept_mean_factor(small_loss_keep(loss, batch["weight"], 0.3), batch["weight"])
        )
    torch.testing.assert_close(out, torch.stack(parts).mean(0))
    plain = _Linear()
    single = NetworkGroup([module.nets[0]]).eval()
    torch.testing.assert_close(
        plain.training_step(single, batch),
        F.cross_entropy(module.nets[0](batch["x"]), batch["label"], reduction="none"),
    )


def test_class_forget_rates_follow_the_uniform_flip_model():
    # 1000 windows, 30 true anomalies, 10 % flipped: about 97 + 27 observed anomalies
    n1_true, n0_true, r = 30.0, 970.0, 0.1
    m1 = (1 - r) * n1_true + r * n0_true
    m0 = (1 - r) * n0_true + r * n1_true
    rate0, rate1 = class_forget_rates(m0, m1, r)
    assert rate1 == pytest.approx(r * n0_true / m1)
    assert rate0 == pytest.approx(r * n1_true / m0)
    assert class_forget_rates(900, 100, 0.0) == (0.0, 0.0)
    assert (
        class_forget_rates(900, 10, 0.2)[1] == 0.95
    )  # more flips expected than observed positives


def test_class_selection_drops_within_each_class():
    loss = torch.tensor([5.0, 0.1, 4.0, 0.2, 3.0, 0.3])
    target = torch.tensor([1, 1, 0, 0, 0, 0])
    keep = class_small_loss_keep(loss, None, target, (0.25, 0.5))
    np.testing.assert_allclose(keep.numpy(), [0.0, 1.0, 0.0, 1.0, 1.0, 1.0])


def test_small_loss_single_network_and_schedule_start():
    det = _Linear(robust="small_loss", forget_rate=0.3, ramp_epochs=2, selection="global")
    module = NetworkGroup([det.build_network()]).train()
    batch = _batch()
    det._epoch = 1  # first epoch of the ramp: nothing dropped
    plain = F.cross_entropy(module.nets[0](batch["x"]), batch["label"], reduction="none")
    torch.testing.assert_close(det.training_step(module, batch), plain)
    det._epoch = 3
    assert det.current_forget_rate() == pytest.approx(0.3)
    out = det.training_step(module, batch)
    assert int((out == 0).sum()) >= 2


def test_robust_parameter_validation():
    for bad in (
        {"robust": "mixup"},
        {"forget_rate": 0.5},
        {"ramp_epochs": -1},
        {"gce_q": 0.0},
        {"selection": "x"},
        {"cl_folds": 1},
        {"ensemble": 0},
        {"ensemble": 1.5},
        {"ensemble": True},
    ):
        with pytest.raises(LogsieveError):
            _Linear(**bad)._validate_params()


def test_ensemble_members_are_pairs_under_coteaching_and_each_learns_from_its_own_peer():
    assert (
        _Linear(ensemble=3).n_networks == 3
        and _Linear(ensemble=2, robust="coteaching").n_networks == 4
    )
    det = _Linear(
        robust="coteaching", forget_rate=0.3, ramp_epochs=0, selection="global", ensemble=2
    )
    torch.manual_seed(0)
    module = NetworkGroup([det.build_network() for _ in range(4)]).train()
    batch = _batch()
    det._epoch = 1
    losses = [F.cross_entropy(n(batch["x"]), batch["label"], reduction="none") for n in module.nets]
    keeps = [small_loss_keep(loss, batch["weight"], 0.3) for loss in losses]
    taught = [losses[i] * _kept_mean_factor(keeps[i ^ 1], batch["weight"]) for i in range(4)]
    torch.testing.assert_close(
        det.training_step(module, batch), (taught[0] + taught[1] + taught[2] + taught[3]) / 2
    )
    small = _Linear(
        robust="small_loss", forget_rate=0.3, ramp_epochs=0, selection="global", ensemble=2
    )
    own = [
        loss * _kept_mean_factor(k, batch["weight"])
        for loss, k in zip(losses[:2], keeps[:2], strict=True)
    ]
    torch.testing.assert_close(
        small.training_step(NetworkGroup(list(module.nets[:2])).train(), batch),
        (own[0] + own[1]) / 2,
    )


def test_ensemble_scores_are_the_members_mean_and_survive_save_load(tmp_path):
    train = make_windows(n_normal=200, n_anomalous=20, seed=0)
    test = make_windows(n_normal=60, n_anomalous=6, seed=1)
    params = dict(embedding_dim=8, num_filters=8, kernel_sizes="2,3", epochs=5, batch_size=16, lr=1e-2,
                  patience=None, num_threads=1, valid_fraction=0.0, random_state=0)  # fmt: skip
    det = create_detector("cnn", ensemble=3, **params).fit(train)
    assert len(det.module_.nets) == 3
    members = []
    for net in det.module_.nets:  # each member alone, through the detector's own scoring
        det.module_.nets, saved = nn.ModuleList([net]), det.module_.nets
        members.append(det.decision_function(test))
        det.module_.nets = saved
    scores = det.decision_function(test)
    np.testing.assert_allclose(scores, np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    assert (
        np.ptp(np.stack(members), axis=0).max() > 1e-4
    )  # different initialisations, different members
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(type(det).load(tmp_path / "m").decision_function(test), scores)
    again = create_detector("cnn", ensemble=3, **params).fit(train)
    np.testing.assert_array_equal(
        again.decision_function(test), scores
    )  # seeded: the same ensemble


# ---------------------------------------------------------------------- end to end
def test_coteaching_on_noisy_labels_ranks_the_flipped_windows_first():
    """10 % flipped fixture labels: the mislabelled 'anomalies' are the largest-loss positives."""
    train = make_windows(n_normal=400, n_anomalous=40, seed=0)
    noisy, flipped = flip_labels(train, 0.1, seed=0, return_mask=True)
    params = dict(embedding_dim=8, num_filters=8, kernel_sizes="2,3", epochs=20, batch_size=16, lr=1e-2,
                  patience=None, num_threads=1, valid_fraction=0.0)  # fmt: skip
    det = create_detector("cnn", robust="coteaching", forget_rate=0.1, ramp_epochs=3, **params).fit(
        noisy
    )
    assert len(det.module_.nets) == 2
    rate0, rate1 = det._class_rates
    assert rate1 > 0.3 > 0.05 > rate0  # most observed "anomalies" are expected to be flips
    p = det.decision_function(noisy)
    observed = noisy.get_column("label").to_numpy()
    truth = train.get_column("label").to_numpy()
    loss = np.where(observed == 1, -np.log(p + 1e-12), -np.log(1 - p + 1e-12))
    pos = np.flatnonzero(observed == 1)
    k = int(flipped[pos].sum())
    largest = pos[np.argsort(-loss[pos], kind="stable")[:k]]
    assert flipped[largest].mean() >= 0.9
    assert (p[truth == 1] > 0.5).mean() >= 0.8  # the true anomalies are still learned
    assert not (p[flipped & (truth == 0)] > 0.5).any()  # no flipped normal window memorised


# ---------------------------------------------------------------------- confident learning
def test_confident_off_diagonal_hand_computed():
    # t0 = mean p0 over label 0 = (0.95 + 0.05 + 0.98) / 3 = 0.66; t1 = mean p1 over label 1 = 0.4
    p1 = np.array([0.05, 0.1, 0.9, 0.2, 0.95, 0.02])
    y = np.array([0, 1, 1, 1, 0, 0])
    assert confident_off_diagonal(p1, y).tolist() == [False, True, False, True, True, False]
    # weights move the thresholds: t0 = 0.6; t1 = 0.75 unweighted, (10 * 0.6 + 0.9) / 11 = 0.627 weighted
    p1 = np.array([0.1, 0.7, 0.6, 0.9])
    y = np.array([0, 0, 1, 1])
    assert confident_off_diagonal(p1, y).tolist() == [False, False, False, False]
    w = np.array([1, 1, 10, 1])
    assert confident_off_diagonal(p1, y, w).tolist() == [False, True, False, False]
    # ... but never a row whose label is the model's own prediction (p1 = 0.45 < 0.5, label 0)
    p1 = np.array([0.1, 0.45, 0.3, 0.9])
    assert confident_off_diagonal(p1, y, np.array([1, 1, 10, 1])).tolist() == [
        False,
        False,
        False,
        False,
    ]


def test_confident_off_diagonal_needs_a_confident_class():
    # neither p0 >= t0 nor p1 >= t1: no confident class, the row is kept
    p1 = np.array([0.0, 0.5, 1.0, 0.5])
    y = np.array([0, 0, 1, 1])  # t0 = 0.75, t1 = 0.75
    assert confident_off_diagonal(p1, y).tolist() == [False, False, False, False]
    # a class nobody is labelled with cannot receive rows
    assert not confident_off_diagonal(np.array([0.9, 0.99]), np.array([0, 0])).any()


def test_confident_learning_removes_flipped_windows_and_keeps_clean_data():
    """Cross-fitted networks find about the flipped share; on clean labels almost nothing is removed."""
    train = make_windows(n_normal=400, n_anomalous=40, seed=0)
    test = make_windows(n_normal=200, n_anomalous=20, seed=1)
    noisy = flip_labels(train, 0.1, seed=0)
    params = dict(embedding_dim=8, num_filters=8, kernel_sizes="2,3", epochs=30, batch_size=16, lr=1e-2,
                  patience=None, num_threads=1, valid_fraction=0.0, robust="confident")  # fmt: skip
    det = create_detector("cnn", **params).fit(noisy)
    assert 0.04 <= det.noise_estimate_ <= 0.15  # 10 % were flipped
    truth = test.get_column("label").to_numpy()
    assert ((det.decision_function(test) > 0.5) == (truth == 1)).mean() >= 0.95
    clean = create_detector("cnn", **params).fit(train)
    assert clean.noise_estimate_ <= 0.03
