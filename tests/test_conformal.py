"""Split conformal sets and intervals (seqjax.conformal): the finite-sample quantile, and
the coverage they reach on exchangeable data, averaged over many draws of the
validation split, against what the theory says it is."""

import numpy as np
import pytest

from seqjax.conformal import achieved, columns, conformal_quantile, fit, sets_and_intervals


def test_the_quantile_is_the_ceil_n_plus_1_c_th_smallest_and_too_few_are_named():
    scores = np.arange(1.0, 20.0)  # n = 19
    assert conformal_quantile(scores, 0.9) == 18.0  # ceil(20 * 0.9) = 18th
    assert conformal_quantile(scores, 0.5) == 10.0  # ceil(10) = 10th: whole, not 11th
    assert conformal_quantile(scores[:9], 0.9) == 9.0  # n = 9: ceil(9) = 9th, the largest
    with pytest.raises(ValueError, match="coverage 0.9 needs at least 9 validation sequences"):
        conformal_quantile(scores[:8], 0.9)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="--coverage must lie strictly between 0 and 1"):
            conformal_quantile(scores, bad)


def _draw(rng, n, k=4):
    """n sequences of a model that is right about 70% of the time, its probabilities
    sharper than that: exchangeable draws."""
    logits = 2.0 * rng.standard_normal((n, k))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    right = rng.random(n) < 0.7
    y = np.where(right, p.argmax(-1), rng.integers(0, k, n))
    return p, y


def test_class_sets_cover_at_the_rate_the_finite_sample_theory_gives():
    """Over 400 validation splits of 50, the sets' coverage of 200 new sequences each
    averages ceil(51 c) / 51 (the scores do not tie), at or above c."""
    rng = np.random.default_rng(0)
    coverages = []
    sizes = []
    for _ in range(400):
        p, y = _draw(rng, 250)
        conformal = fit("cross_entropy", p[:50], y[:50], 0.9)
        scored = achieved("cross_entropy", p[50:], y[50:], conformal)
        coverages.append(scored["covered"])
        sizes.append(scored["mean_set_size"])
    assert np.mean(coverages) == pytest.approx(46 / 51, abs=0.005)  # 0.902 >= 0.9
    assert 1 < np.mean(sizes) < 4  # informative: fewer than every class


def test_intervals_cover_at_the_same_rate_with_one_width_per_output():
    rng = np.random.default_rng(1)
    coverage = {0: [], 1: []}
    for _ in range(400):
        truth = rng.standard_normal((250, 2))
        predicted = truth + rng.standard_normal((250, 2)) * [0.5, 2.0]  # output 1 is noisier
        conformal = fit("mse", predicted[:50], truth[:50], 0.8)
        scored = achieved("mse", predicted[50:], truth[50:], conformal)
        for j in (0, 1):
            coverage[j].append(scored[f"y{j}_covered"])
    for j in (0, 1):  # ceil(51 * 0.8) = 41: 41 / 51
        assert np.mean(coverage[j]) == pytest.approx(41 / 51, abs=0.006)
    assert conformal.halfwidths[1] > 2 * conformal.halfwidths[0]


def test_a_set_holds_every_class_at_least_as_probable_as_the_threshold():
    p = np.array([[0.6, 0.3, 0.1], [0.45, 0.45, 0.1], [0.2, 0.2, 0.6], [0.8, 0.15, 0.05]])
    y = np.array([0, 1, 2, 1])  # scores 1 - p_y: 0.4, 0.55, 0.4, 0.85
    conformal = fit("cross_entropy", np.tile(p, (5, 1)), np.tile(y, 5), 0.7)  # n = 20
    assert conformal.class_thresholds == ((pytest.approx(1 - 0.55),) * 3,)  # ceil(14.7) = 15th
    (sets,), _ = sets_and_intervals("cross_entropy", p, conformal)
    np.testing.assert_array_equal(sets, p >= 0.45 - 1e-12)  # the tie at 0.45 is in


def test_binary_and_trend_runs_name_their_columns_and_keep_their_predictions():
    rng = np.random.default_rng(2)
    p = rng.random(40).astype(np.float32)
    y = (rng.random(40) < p).astype(np.float32)
    conformal = fit("binary_cross_entropy", p, y, 0.9)
    names, values, sets = columns("binary_cross_entropy", p, conformal, ("ok", "defect"))
    assert names == ["set_ok", "set_defect"] and values.shape == (40, 2) and sets == [True] * 2
    np.testing.assert_array_equal(
        values[:, 1], (p >= conformal.class_thresholds[0][1] - 1e-7) * 1.0
    )

    predictions = np.concatenate(
        [rng.uniform(-1, 1, (40, 2, 1)), rng.dirichlet(np.ones(3), (40, 2))], -1
    )  # (N, Hz, 4)
    targets = np.stack([rng.uniform(-1, 1, (40, 2)), np.zeros((40, 2))], -1)  # (N, Hz, 2)
    conformal = fit("trend_multitask", predictions, targets, 0.8)
    names, values, sets = columns("trend_multitask", predictions, conformal, None)
    assert sets == [True] * 6 + [False] * 4
    assert names == [
        *(f"{h}_set_{c}" for h in ("d7", "d30") for c in ("down", "flat", "up")),
        "d7_score_lo", "d7_score_hi", "d30_score_lo", "d30_score_hi",
    ]  # fmt: skip
    np.testing.assert_allclose(values[:, 6] + values[:, 7], 2 * predictions[:, 0, 0])
    scored = achieved("trend_multitask", predictions, targets, conformal)
    assert {"d7_direction_covered", "d30_score_covered", "d30_score_width"} <= set(scored)
    assert scored["d7_score_covered"] >= 0.8  # its own validation data: at least c


def test_a_model_right_more_often_than_asked_keeps_its_top_class_in_every_set():
    """Least-ambiguous sets alone would leave the least sure 15% or so empty to come down
    to 0.8; with the top class kept, every set holds one, and coverage is the accuracy."""
    rng = np.random.default_rng(5)
    p, y = _draw(rng, 2000, k=3)
    y = np.where(rng.random(2000) < 0.95, p.argmax(-1), y)  # about 97% right
    conformal = fit("cross_entropy", p[:1000], y[:1000], 0.8)
    (sets,), _ = sets_and_intervals("cross_entropy", p[1000:], conformal)
    raw = p[1000:] >= conformal.class_thresholds[0][0]
    assert (raw.sum(-1) == 0).mean() > 0.1  # what the sets alone would leave empty
    assert sets.sum(-1).min() == 1 and sets[np.arange(1000), p[1000:].argmax(-1)].all()
    scored = achieved("cross_entropy", p[1000:], y[1000:], conformal)
    right = np.mean(p[1000:].argmax(-1) == y[1000:])
    assert scored["covered"] == pytest.approx(right, abs=0.01) and scored["covered"] > 0.9


def test_by_class_covers_a_rare_class_that_the_marginal_sets_leave_short():
    """Classes of 80/15/5%, the model sure of the common one and vague on the rare ones:
    over 300 validation splits the marginal sets cover 0.9 overall but the rarest class
    far less; fitted class by class, each class is covered at 0.9 or more."""
    rng = np.random.default_rng(6)

    def draw(n):
        y = rng.choice(3, n, p=[0.8, 0.15, 0.05])
        logits = rng.standard_normal((n, 3))
        logits[np.arange(n), y] += np.where(y == 0, 3.0, 1.0)  # sure of class 0 alone
        logits[:, 0] += 1.0
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), y

    marginal, by_class = [], []
    for _ in range(300):
        p, y = draw(600)  # 400 to fit (about 20 of class 2), 200 to score
        for out, flag in ((marginal, False), (by_class, True)):
            conformal = fit("cross_entropy", p[:400], y[:400], 0.9, by_class=flag)
            scored = achieved("cross_entropy", p[400:], y[400:], conformal)
            out.append([scored["covered"], *scored["covered_by_class"]])
    marginal, by_class = (
        np.nanmean(np.array(marginal, float), 0),
        np.nanmean(np.array(by_class, float), 0),
    )
    assert marginal[0] == pytest.approx(0.9, abs=0.01) and marginal[3] < 0.8  # the rare class short
    assert (by_class[1:] >= 0.9 - 0.01).all()  # each class
    with pytest.raises(
        ValueError,
        match="needs at least 9 validation sequences to take a "
        "quantile from; class 2 of the validation split has 4",
    ):
        y = np.r_[np.zeros(40, int), np.full(4, 2), np.ones(20, int)]
        fit("cross_entropy", np.full((64, 3), 1 / 3), y, 0.9, by_class=True)
