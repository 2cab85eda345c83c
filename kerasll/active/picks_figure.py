"""`picks.png`: what a strategy chose, beside what random sampling chose."""

import math

import numpy as np
from kerasll_serving.atomic import atomic_path


def _grid(figure, images, captions, title, columns):
    rows = max(1, math.ceil(len(images) / columns))
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.suptitle(title, fontsize=10)
    for axis in axes.ravel():
        axis.set_axis_off()
    for axis, image, caption in zip(axes.ravel(), images, captions):
        if image.shape[-1] == 1:
            axis.imshow(
                image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest"
            )
        else:
            axis.imshow(image, interpolation="nearest")
        axis.set_title(caption, fontsize=7)


def plot_picks(
    images,
    labels,
    class_names,
    chosen,
    scores,
    random_chosen,
    path,
    title="learning_loss picks",
    count=24,
    columns=6,
):
    """Draws two image grids: a strategy's picks and random picks.

    Args:
        images: the pool's images, (N, H, W, C) uint8.
        labels: the pool's true labels.
        class_names: class names indexed by label.
        chosen: pool indices the strategy picked, best first.
        scores: the strategy's score of each pick (e.g. predicted loss).
        random_chosen: pool indices picked at random.
        path: target .png file (written atomically).
        title: title of the left grid.
        count: images per grid (the first `count` picks).
        columns: images per grid row.

    Returns:
        `path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chosen = np.asarray(chosen)[:count]
    scores = np.asarray(scores, dtype=np.float64)[:count]
    random_chosen = np.asarray(random_chosen)[:count]
    rows = max(1, math.ceil(max(len(chosen), len(random_chosen), 1) / columns))
    figure = Figure(figsize=(2 * columns * 1.3 + 0.5, rows * 1.5 + 0.8), dpi=110)
    FigureCanvasAgg(figure)
    left, right = figure.subfigures(1, 2, wspace=0.05)
    _grid(
        left,
        images[chosen],
        [
            f"pred. {s:.2f}\ntrue {class_names[labels[i]]}"
            for i, s in zip(chosen, scores)
        ],
        f"{title}\n(predicted loss, a ranking score: only its order matters; "
        "true label)",
        columns,
    )
    _grid(
        right,
        images[random_chosen],
        [f"\ntrue {class_names[labels[i]]}" for i in random_chosen],
        "random picks (true label)",
        columns,
    )
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path
