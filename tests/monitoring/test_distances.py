"""PSI and Jensen–Shannon distance on small histograms worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from freshrec.monitoring.distances import DistributionDrift, js_distance, psi


def test_two_bins_by_hand() -> None:
    # shares r = (0.8, 0.2), c = (0.5, 0.5)
    # PSI = (0.5-0.8)·ln(0.5/0.8) + (0.5-0.2)·ln(0.5/0.2)
    #     = (-0.3)(-0.470004) + (0.3)(0.916291) = 0.141001 + 0.274887 = 0.415888
    # m = (0.65, 0.35)
    # KL(r‖m) = 0.8·log2(0.8/0.65) + 0.2·log2(0.2/0.35) = 0.239650 - 0.161471 = 0.078179
    # KL(c‖m) = 0.5·log2(0.5/0.65) + 0.5·log2(0.5/0.35) = -0.189257 + 0.257285 = 0.068028
    # JS distance = sqrt((0.078179 + 0.068028) / 2) = sqrt(0.073104) = 0.270377
    assert psi([80, 20], [50, 50], smoothing=0) == pytest.approx(0.415888, abs=1e-6)
    assert js_distance([80, 20], [50, 50], smoothing=0) == pytest.approx(0.270377, abs=1e-6)


def test_four_bins_by_hand() -> None:
    # r = (0.25, 0.25, 0.25, 0.25), c = (0.4, 0.3, 0.2, 0.1)
    # PSI = 0.15·ln 1.6 + 0.05·ln 1.2 + (-0.05)·ln 0.8 + (-0.15)·ln 0.4
    #     = 0.070501 + 0.009116 + 0.011157 + 0.137444 = 0.228217
    # m = (0.325, 0.275, 0.225, 0.175)
    # KL(r‖m) = 0.25·log2(0.25⁴ / (0.325·0.275·0.225·0.175)) = 0.25·log2(1.110013) = 0.037645
    # KL(c‖m) = 0.4·log2(0.4/0.325) + 0.3·log2(0.3/0.275) + 0.2·log2(0.2/0.225)
    #         + 0.1·log2(0.1/0.175) = 0.119825 + 0.037659 - 0.033985 - 0.080735 = 0.042764
    # JS distance = sqrt((0.037645 + 0.042764) / 2) = sqrt(0.040205) = 0.200510
    assert psi([25, 25, 25, 25], [40, 30, 20, 10], smoothing=0) == pytest.approx(0.228217,
                                                                                 abs=1e-5)
    assert js_distance([25] * 4, [40, 30, 20, 10], smoothing=0) == pytest.approx(0.200510,
                                                                               abs=1e-5)


def test_smoothing_fills_an_empty_bin() -> None:
    # counts r = (10, 0), c = (5, 5), plus 0.5 per bin:
    # r = (10.5, 0.5)/11 = (0.954545, 0.045455), c = (5.5, 5.5)/11 = (0.5, 0.5)
    # PSI = (-0.454545)·ln(0.5/0.954545) + (0.454545)·ln(0.5/0.045455)
    #     = (-0.454545)(-0.646627) + (0.454545)(2.397895) = 0.293921 + 1.089952 = 1.383873
    assert psi([10, 0], [5, 5], smoothing=0.5) == pytest.approx(1.383873, abs=1e-5)
    assert psi([10, 0], [5, 5], smoothing=0) == math.inf


def test_identical_distributions_are_zero_apart() -> None:
    counts = [120, 40, 7, 0, 3]
    for smoothing in (0.0, 0.5):
        assert psi(counts, counts, smoothing=smoothing) == pytest.approx(0.0, abs=1e-12)
        assert js_distance(counts, counts, smoothing=smoothing) == pytest.approx(0.0, abs=1e-6)
    # Proportional counts are the same distribution.
    assert psi([1, 2, 3], [10, 20, 30], smoothing=0) == pytest.approx(0.0, abs=1e-12)


def test_disjoint_distributions_are_one_apart_in_js() -> None:
    assert js_distance([3, 0], [0, 7], smoothing=0) == pytest.approx(1.0)
    assert psi([3, 0], [0, 7], smoothing=0) == math.inf


def test_both_are_symmetric() -> None:
    a, b = [30, 50, 20], [10, 10, 80]
    assert psi(a, b) == pytest.approx(psi(b, a))
    assert js_distance(a, b) == pytest.approx(js_distance(b, a))


def test_js_matches_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(1, 100, 6), rng.integers(1, 100, 6)
        assert js_distance(a, b, smoothing=0) == pytest.approx(
            float(jensenshannon(a / a.sum(), b / b.sum(), base=2)), abs=1e-9)


def test_dicts_are_aligned_by_category() -> None:
    drift = DistributionDrift.compare({"view": 80, "purchase": 20},
                                      {"purchase": 50, "view": 50, "click": 0}, smoothing=0)
    assert drift.bins == ("click", "purchase", "view")
    assert drift.psi == pytest.approx(0.415888, abs=1e-6)
    assert drift.as_dict()["reference"] == {"click": 0.0, "purchase": 0.2, "view": 0.8}
    # A category only one side has counts as 0 on the other, then smoothed.
    grown = DistributionDrift.compare({"view": 100}, {"view": 90, "rating": 10})
    assert 0 < grown.psi < math.inf and 0 < grown.js < 1


def test_arrays_work_as_aligned_bins() -> None:
    drift = DistributionDrift.compare(np.array([80, 20]), np.array([50, 50]), smoothing=0)
    assert drift.bins == ("0", "1")
    assert drift.current == (0.5, 0.5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        psi([1, -2], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        js_distance([0, 0], [1, 1], smoothing=0)
    with pytest.raises(TypeError, match="dicts"):
        DistributionDrift.compare({"a": 1}, [1])
