"""torchtopo.sklearn: gudhi.representations' results, the scikit-learn estimator contract, and a
Pipeline + GridSearchCV that counts the loops of noisy circles."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from gudhi import representations as gudhi_representations
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from torchtopo import rips_persistence
from torchtopo.sklearn import BettiCurve, Entropy, Landscape, PersistenceImage, Silhouette
from torchtopo.vectorize import PowerWeight

rng = np.random.default_rng(0)
DIAGRAMS = [np.sort(rng.uniform(0, 2, (n, 2)), 1) for n in (6, 0, 11, 3)]

PAIRS = [  # (ours, gudhi's) with the same parameters
    (PersistenceImage(0.3, resolution=(6, 5)), gudhi_representations.PersistenceImage(0.3, resolution=[6, 5])),
    (Landscape(3, 12), gudhi_representations.Landscape(3, 12)),
    (Silhouette(PowerWeight(2), 9), gudhi_representations.Silhouette(lambda x: (x[1] - x[0]) ** 2, 9)),
    (BettiCurve(None), gudhi_representations.BettiCurve(None)),
    (BettiCurve(15, (0.0, math.nan)), gudhi_representations.BettiCurve(15, [0.0, np.nan])),
    (Entropy(), gudhi_representations.Entropy()),
    (Entropy("vector", False, 8), gudhi_representations.Entropy("vector", False, 8)),
]


@pytest.mark.parametrize("ours, reference", PAIRS, ids=lambda p: type(p).__name__)
def test_fit_transform_equals_gudhi(ours, reference):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.fit_transform(DIAGRAMS)
    out = ours.fit_transform(DIAGRAMS)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9 * max(1.0, np.abs(expected).max()))
    # fitted on some diagrams, applied to others, as gudhi
    np.testing.assert_allclose(ours.fit(DIAGRAMS[:3]).transform(DIAGRAMS[3:]),
                               reference.fit(DIAGRAMS[:3]).transform(DIAGRAMS[3:]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("ours, reference", PAIRS, ids=lambda p: type(p).__name__)
def test_estimator_contract(ours, reference):
    params = ours.get_params()
    twin = clone(ours)
    assert twin.get_params().keys() == params.keys() and twin is not ours
    assert not hasattr(twin, "vectorizer_")
    with pytest.raises(Exception, match="not fitted"):
        twin.transform(DIAGRAMS)
    twin.set_params(device="cpu")
    fitted = pickle.loads(pickle.dumps(twin.fit(DIAGRAMS)))
    np.testing.assert_array_equal(fitted.transform(DIAGRAMS), twin.transform(DIAGRAMS))


def test_bad_input_raises():
    with pytest.raises(TypeError, match="list of"):
        Landscape().fit("diagrams")
    with pytest.raises(ValueError, match="at least one"):
        Landscape().fit([])
    with pytest.raises(ValueError, match=r"X\[1\]"):
        Landscape().fit([np.zeros((1, 2)), np.zeros((2, 3))])
    with pytest.raises(TypeError, match="resolution"):
        Landscape(resolution=2.5).fit(DIAGRAMS)  # checked when the module is built, as sklearn does


def noisy_circles(loops: int, points: int, generator: np.random.Generator) -> np.ndarray:
    """``points`` points on ``loops`` circles of radius 1, 4 apart, with Gaussian noise."""
    which = np.arange(points) % loops
    angles = generator.uniform(0, 2 * np.pi, points)
    cloud = np.stack([np.cos(angles) + 4 * which, np.sin(angles)], 1)
    return cloud + 0.1 * generator.normal(size=cloud.shape)


def test_pipeline_and_grid_search_count_the_loops_of_noisy_circles():
    generator = np.random.default_rng(7)
    labels = np.arange(90) % 3 + 1
    clouds = np.stack([noisy_circles(k, 60, generator) for k in labels])
    diagrams = rips_persistence(torch.from_numpy(clouds), max_dim=1).to_list(1)
    X = [d.numpy() for d in diagrams]
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=30, random_state=0, stratify=labels)
    pipeline = Pipeline([("vectorize", BettiCurve()), ("scale", StandardScaler()),
                         ("classify", LogisticRegression(max_iter=2000))])
    search = GridSearchCV(pipeline, {
        "vectorize": [BettiCurve(resolution=20), Landscape(num_landscapes=3, resolution=20),
                      PersistenceImage(0.1, "linear", resolution=(8, 8))],
        "classify__C": [0.1, 10.0],
    }, cv=3)
    search.fit(X_train, y_train)
    assert search.best_score_ >= 0.9
    assert search.score(X_test, y_test) >= 0.9
