"""--data-limit: a keyed, class-balanced subset of the training set (ganbench.data.batches.limited)."""

import numpy as np
import pytest

from ganbench.data.batches import limited
from ganbench.errors import GanbenchError

LABELS = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])  # 950 images, unbalanced
IMAGES = np.arange(len(LABELS))  # each image its own index


def test_a_count_is_split_evenly_over_the_classes_in_the_sets_order():
    images, labels = limited(IMAGES, LABELS, 103, seed=0)
    assert len(images) == 103 and np.array_equal(labels, LABELS[images])  # images and labels stay paired
    assert np.bincount(labels).tolist() == [11, 11, 11] + [10] * 7  # the remainder to the first classes
    assert np.all(np.diff(images) > 0)


def test_the_subset_is_keyed_on_the_seed():
    first, _ = limited(IMAGES, LABELS, 100, seed=0)
    assert np.array_equal(first, limited(IMAGES, LABELS, 100, seed=0)[0])
    assert not np.array_equal(first, limited(IMAGES, LABELS, 100, seed=1)[0])


def test_a_fraction_without_labels_and_no_limit():
    images, labels = limited(IMAGES, None, 0.1, seed=0)
    assert len(images) == 95 and labels is None and len(set(images.tolist())) == 95
    assert limited(IMAGES, LABELS, 0.0, seed=0)[0] is IMAGES


def test_more_than_the_set_is_refused():
    with pytest.raises(GanbenchError, match="data-limit 951 exceeds the 950 images"):
        limited(IMAGES, LABELS, 951, seed=0)
