"""BADGE: k-means++ seeding on last-layer gradient embeddings (Ash et al., 2020).

A classifier's gradient of the cross-entropy with respect to its last
layer's weights, taking the predicted class as the label, is the outer
product `(p - onehot(argmax p)) x h` of the probabilities `p` and the
penultimate features `h`. Its norm is large for uncertain items and its
direction tells items apart, so k-means++ seeding on it picks batches that
are both uncertain and diverse.

The embeddings are never formed: for outer products,
`<a_i x h_i, a_j x h_j> = <a_i, a_j> <h_i, h_j>`, so every distance is
computed from the two factors in O(C + D) instead of O(C * D).
"""

import numpy as np


def gradient_factors(probabilities, features):
    """The two factors of each item's last-layer gradient embedding.

    Args:
        probabilities: (n, C) class probabilities.
        features: (n, D) penultimate features.

    Returns:
        Tuple `(a, h)`: `a = p - onehot(argmax p)` (n, C) and `h` (n, D),
        both float64; the embedding of item i is `outer(a[i], h[i])`.
    """
    a = np.array(probabilities, dtype=np.float64)
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    return a, np.asarray(features, dtype=np.float64)


def _squared_distances(a, h, norms, center):
    """Squared embedding distances from every item to item `center`."""
    cross = (a @ a[center]) * (h @ h[center])
    return np.maximum(norms + norms[center] - 2.0 * cross, 0.0)


def kmeans_plus_plus(a, h, budget, rng):
    """k-means++ seeding on outer-product embeddings.

    The first center is the item with the largest embedding norm (as in the
    authors' code); each next one is drawn with probability proportional to
    its squared distance to the nearest center so far.

    Args:
        a: (n, C) first factors.
        h: (n, D) second factors.
        budget: number of centers, <= n.
        rng: a `numpy.random.Generator`.

    Returns:
        (budget,) int64 distinct positions, in the order they were chosen.
    """
    norms = (a * a).sum(axis=1) * (h * h).sum(axis=1)
    chosen = [int(np.argmax(norms))]
    nearest = _squared_distances(a, h, norms, chosen[0])
    for _ in range(1, int(budget)):
        total = nearest.sum()
        if total > 0:
            center = int(rng.choice(len(nearest), p=nearest / total))
        else:  # Every item coincides with a center: take the unchosen ones in turn.
            center = int(np.setdiff1d(np.arange(len(nearest)), chosen)[0])
        chosen.append(center)
        nearest = np.minimum(nearest, _squared_distances(a, h, norms, center))
        nearest[chosen] = 0.0
    return np.asarray(chosen, dtype=np.int64)
