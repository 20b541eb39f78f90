"""Splits by person, balanced pairs in folds, gallery / probe splits."""
import numpy as np
import pytest

from scratchface.data.pairs import gallery_probe_split, make_pairs, pair_distances, pk_batches, split_by_person

ORL_LIKE = np.repeat(np.arange(31, 41), 10)  # 10 people x 10 images


def test_split_by_person_is_disjoint_and_seeded():
    labels = np.repeat(np.arange(1, 41), 10)
    train, test = split_by_person(labels, test_people=10, rng=3)
    assert np.intersect1d(labels[train], labels[test]).size == 0
    assert np.unique(labels[test]).size == 10 and train.size == 300 and test.size == 100
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(400))
    again = split_by_person(labels, test_people=10, rng=np.random.default_rng(3))
    assert np.array_equal(again[1], test)
    other = split_by_person(labels, test_people=10, rng=4)
    assert not np.array_equal(other[1], test)


def test_split_by_person_with_named_people():
    labels = np.repeat(np.arange(1, 41), 10)
    train, test = split_by_person(labels, test_people=range(31, 41))
    assert np.array_equal(test, np.arange(300, 400)) and np.array_equal(train, np.arange(300))


def test_make_pairs_orl_like_counts_and_balance():
    pairs = make_pairs(ORL_LIKE, n_folds=10, rng=0)
    # every same pair: 10 people x C(10, 2) = 450, and as many different pairs
    assert pairs.same.sum() == 450 and (~pairs.same).sum() == 450
    assert np.array_equal(pairs.same, ORL_LIKE[pairs.first] == ORL_LIKE[pairs.second])
    assert np.all(pairs.first < pairs.second)
    keys = set(zip(pairs.first.tolist(), pairs.second.tolist()))
    assert len(keys) == 900  # no pair twice
    for k in range(10):  # each fold 45 same + 45 different
        in_fold = pairs.fold == k
        assert pairs.same[in_fold].sum() == 45 and (~pairs.same[in_fold]).sum() == 45
    assert np.all(np.diff(pairs.fold) >= 0)


def test_make_pairs_seeded():
    a, b, c = (make_pairs(ORL_LIKE, rng=s) for s in (1, 1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.first, c.first)


def test_make_pairs_unbalanced_people_and_cap():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])  # 6 + 1 same pairs, 14 different
    pairs = make_pairs(labels, n_folds=2, rng=0)
    assert pairs.same.sum() == 7 and (~pairs.same).sum() == 7
    capped = make_pairs(labels, n_folds=2, rng=0, max_same_per_person=2)
    assert capped.same.sum() == 3  # 2 of person 0, 1 of person 1


def test_gallery_probe_split():
    gallery, probe = gallery_probe_split(ORL_LIKE, per_person=1, rng=0)
    assert gallery.size == 10 and np.array_equal(np.unique(ORL_LIKE[gallery]), np.arange(31, 41))
    assert np.intersect1d(gallery, probe).size == 0 and gallery.size + probe.size == 100
    two, _ = gallery_probe_split(ORL_LIKE, per_person=2, rng=0)
    assert np.all(np.bincount(ORL_LIKE[two])[31:] == 2)


def test_pair_distances_match_direct_computation(rng):
    e = rng.standard_normal((12, 5))
    labels = np.repeat(np.arange(4), 3)
    pairs = make_pairs(labels, n_folds=2, rng=0)
    d = pair_distances(e, pairs)
    for k in range(len(d)):
        diff = e[pairs.first[k]] - e[pairs.second[k]]
        assert d[k] == pytest.approx(diff @ diff)
    cos = pair_distances(e, pairs, metric="cosine")
    a, b = e[pairs.first[0]], e[pairs.second[0]]
    assert cos[0] == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_errors():
    labels = np.repeat(np.arange(3), 2)
    with pytest.raises(ValueError, match="at least one training person"):
        split_by_person(labels, test_people=3)
    with pytest.raises(ValueError, match="do not occur"):
        split_by_person(labels, test_people=[7])
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or an int seed"):
        split_by_person(labels, test_people=1, rng=None)
    with pytest.raises(TypeError, match="labels must have a signed integer or unsigned integer dtype"):
        make_pairs(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="at least two people"):
        make_pairs(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="at least two images"):
        make_pairs(np.arange(5))
    with pytest.raises(ValueError, match="use fewer folds"):
        make_pairs(np.array([0, 0, 1]), n_folds=10)
    with pytest.raises(ValueError, match="leaves no probe"):
        gallery_probe_split(np.array([0, 0, 1]), per_person=1)


# ----------------------------------------------------------------------------- P x K batches

def test_pk_batches_hold_p_people_with_k_images_each_and_cover_the_epoch_once():
    labels = np.repeat([3, 5, 8, 9], 6)                 # 4 people x 6 images
    batches = pk_batches(labels, 2, 3, np.random.default_rng(0))
    # two groups of 2 people; each person's 6 images in 2 chunks of 3: 4 batches of 2 x 3
    assert len(batches) == 4
    for batch in batches:
        people, counts = np.unique(labels[batch], return_counts=True)
        assert people.size == 2 and np.all(counts == 3)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(labels.size))
    again = pk_batches(labels, 2, 3, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_pk_batches_uneven_people_and_bad_input():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 3)        # 7 images -> chunks of 4 and 3; 2 images -> one chunk
    batches = pk_batches(labels, 3, 3, np.random.default_rng(1))
    assert sorted(len(b) for b in batches) == [3, 9]       # (4 + 2 + 3) and 3
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(labels.size))
    with pytest.raises(ValueError, match="people_per_batch"):
        pk_batches(labels, 0, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="images_per_person"):
        pk_batches(labels, 2, -1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        pk_batches(labels, 2, 3, None)
