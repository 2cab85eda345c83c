"""Greedy k-center selection (Sener & Savarese's core-set) in bounded memory.

Distances are computed in blocks, so 50,000 labeled centers against 10,000
candidates never hold more than `chunk_size x candidates` distances at once.
"""

import numpy as np


def min_distances(points, centers, chunk_size=1024):
    """Euclidean distance from each point to its nearest center.

    Args:
        points: (N, D) array.
        centers: (C, D) array; C may be 0.
        chunk_size: centers per block; each block holds a few (chunk_size, N)
            float64 arrays (about 80 MB each for 1,024 x 10,000).

    Returns:
        (N,) float64 array; +inf everywhere when there are no centers.
    """
    points = np.asarray(points, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, points.shape[1])
    nearest = np.full(len(points), np.inf)
    point_norms = np.einsum("ij,ij->i", points, points)
    for start in range(0, len(centers), int(chunk_size)):
        block = centers[start : start + int(chunk_size)]
        squared = (
            point_norms[:, None]
            - 2.0 * points @ block.T
            + np.einsum("ij,ij->i", block, block)[None, :]
        )
        nearest = np.minimum(nearest, squared.min(axis=1))
    return np.sqrt(np.maximum(nearest, 0.0))


def greedy_k_center(points, budget, centers=None, chunk_size=1024):
    """Picks `budget` points, each the farthest from all centers so far.

    Starting from `centers` (e.g. the labeled set), repeatedly choose the
    point whose distance to its nearest center is largest and make it a
    center. Ties go to the lowest index. Without initial centers the first
    pick is point 0.

    Args:
        points: (N, D) candidate features.
        budget: number of points to pick, at most N.
        centers: optional (C, D) features of existing centers.
        chunk_size: centers per block when measuring initial distances.

    Returns:
        Tuple `(chosen, distances)`: int64 positions into `points`, in pick
        order, and each pick's distance to its nearest center when picked
        (inf for a first pick without centers).

    Raises:
        ValueError: `budget` outside [0, N].
    """
    points = np.asarray(points, dtype=np.float64)
    if not 0 <= int(budget) <= len(points):
        raise ValueError(
            f"Expected budget in [0, {len(points)}]. Received: budget={budget}"
        )
    if centers is None or len(centers) == 0:
        nearest = np.full(len(points), np.inf)
    else:
        nearest = min_distances(points, centers, chunk_size)
    norms = np.einsum("ij,ij->i", points, points)
    chosen, distances = [], []
    for _ in range(int(budget)):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        distances.append(float(nearest[pick]))
        squared = norms - 2.0 * (points @ points[pick]) + norms[pick]
        nearest = np.minimum(nearest, np.sqrt(np.maximum(squared, 0.0)))
        nearest[pick] = -1.0  # never picked twice, even among duplicates
    return np.asarray(chosen, dtype=np.int64), np.asarray(distances)
