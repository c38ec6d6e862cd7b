"""G/P/GP-TopFreq and TIFU-KNN on tiny examples worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.datasets import build_dataset
from models.evaluation.harness import fit_data
from models.evaluation.protocol import Split, make_task
from models.nbr.matrices import basket_matrix
from models.nbr.tifuknn import TifuKnn, TifuParams, basket_weights, user_vectors
from models.nbr.topfreq import GPTopFreq, GTopFreq, PTopFreq


def reference_tifu_vector(baskets: list[list[int]], n_items: int, p: TifuParams) -> np.ndarray:
    """TIFU user vector by the paper's recipe, written as plainly as possible."""
    n = len(baskets)
    vecs = []
    for j, b in enumerate(baskets):
        v = np.zeros(n_items)
        v[b] = p.within_decay ** (n - 1 - j)
        vecs.append(v)
    if n < p.n_groups:
        groups = [[v] for v in vecs]
    else:
        base, extra = divmod(n, p.n_groups)
        sizes = [base] * (p.n_groups - extra) + [base + 1] * extra
        groups, pos = [], 0
        for s in sizes:
            groups.append(vecs[pos : pos + s])
            pos += s
    out = np.zeros(n_items)
    for g, members in enumerate(groups):
        out += np.mean(members, axis=0) * p.group_decay ** (p.n_groups - 1 - g)
    return out / len(groups)


def test_basket_weights_small_history_each_basket_its_own_group() -> None:
    p = TifuParams()
    w = basket_weights(np.array([0, 1, 2]), np.array([3, 3, 3]), p)
    expected = [0.9**2 * 0.7**6 / 3, 0.9 * 0.7**5 / 3, 0.7**4 / 3]
    assert w == pytest.approx(expected)


def test_basket_weights_later_groups_take_the_extra_baskets() -> None:
    p = TifuParams()  # 7 groups; 9 baskets -> sizes 1,1,1,1,1,2,2
    w = basket_weights(np.arange(9), np.full(9, 9), p)
    assert w[0] == pytest.approx(0.9**8 * 0.7**6 / 1 / 7)
    assert w[5] == pytest.approx(0.9**3 * 0.7**1 / 2 / 7)
    assert w[8] == pytest.approx(1.0 / 2 / 7)


@pytest.mark.parametrize("n_baskets", [1, 3, 7, 8, 15, 22])
def test_user_vectors_match_the_plain_recipe(n_baskets: int) -> None:
    rng = np.random.default_rng(n_baskets)
    baskets = [sorted(rng.choice(6, size=rng.integers(1, 4), replace=False).tolist())
               for _ in range(n_baskets)]
    users = [0] * sum(len(b) for b in baskets)
    idx = [j for j, b in enumerate(baskets) for _ in b]
    items = [i for b in baskets for i in b]
    ds = build_dataset("t", users, idx, [f"{i}" for i in items])
    codes = {name: c for c, name in enumerate(ds.item_ids)}
    coded = [[codes[str(i)] for i in b] for b in baskets]
    got = user_vectors(basket_matrix(ds), 1, TifuParams()).toarray()[0]
    want = reference_tifu_vector(coded, ds.n_items, TifuParams())
    assert got == pytest.approx(want)


def tiny_task():
    # Users 0-2 history then target; user 3 only for neighbour pool.
    users = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    baskets = [0, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
    items = ["a", "b", "a", "c", "a", "a", "b", "d", "d", "e", "a", "b", "c"]
    return make_task(build_dataset("t", users, baskets, items))


def codes(task, names: str) -> list[int]:
    return [task.dataset.item_ids.index(n) for n in names]


def test_topfreq_family() -> None:
    task = tiny_task()
    split = Split(0, train=np.array([1, 2, 3]), val=np.array([], np.int64), test=np.array([0]))
    data = fit_data(task, split)
    g, p, gp = GTopFreq(), PTopFreq(), GPTopFreq()
    for m in (g, p, gp):
        m.fit(data)
    # History baskets: a in 5, b in 2, d in 2 (tie broken by the lower item code).
    assert g.recommend(np.array([0]), 2).tolist() == [codes(task, "ab")]
    # User 0 history: {a,b} then {a}: a twice, b once.
    assert p.recommend(np.array([0]), 3).tolist() == [[*codes(task, "ab"), -1]]
    assert gp.recommend(np.array([0]), 3).tolist() == [codes(task, "abd")]


def test_ptopfreq_breaks_count_ties_by_recency() -> None:
    task = make_task(build_dataset("t", [0] * 4, [0, 1, 2, 3], list("xyzq")))
    split = Split(0, train=np.array([0]), val=np.array([], np.int64), test=np.array([0]))
    p = PTopFreq()
    p.fit(fit_data(task, split))
    assert p.recommend(np.array([0]), 3).tolist() == [codes(task, "zyx")]


def test_tifuknn_blends_own_vector_with_nearest_neighbours() -> None:
    task = tiny_task()
    split = Split(0, train=np.array([1, 2, 3]), val=np.array([], np.int64), test=np.array([0]))
    params = TifuParams(n_neighbors=1, alpha=0.5)
    model = TifuKnn(params)
    model.fit(fit_data(task, split))
    vecs = user_vectors(task.history_baskets, task.n_users, params).toarray()
    # Nearest pool user to user 0 by Euclidean distance, never user 0 itself.
    dists = [np.linalg.norm(vecs[0] - vecs[u]) for u in (1, 2, 3)]
    nearest = (1, 2, 3)[int(np.argmin(dists))]
    expected = 0.5 * vecs[0] + 0.5 * vecs[nearest]
    got = model.scores(np.array([0])).toarray()[0]
    assert got == pytest.approx(expected)
    top = model.recommend(np.array([0]), 3)[0]
    assert top[0] == int(np.argmax(expected))


def test_tifuknn_never_uses_self_as_neighbour() -> None:
    task = tiny_task()
    split = Split(0, train=np.array([0, 1, 2, 3]), val=np.array([], np.int64),
                  test=np.array([0]))
    model = TifuKnn(TifuParams(n_neighbors=1, alpha=0.0))
    model.fit(fit_data(task, split))
    own = user_vectors(task.history_baskets, task.n_users, TifuParams()).toarray()[0]
    got = model.scores(np.array([0])).toarray()[0]
    assert not np.allclose(got, own)
    assert isinstance(model.scores(np.array([0])), sp.csr_matrix)
