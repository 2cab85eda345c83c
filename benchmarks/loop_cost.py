"""What does the simulate loop cost over a plain `keras.Model.fit`?

One cycle of `kerasll simulate` trains with `kerasll.active.training.train_model`:
a fresh model and optimizer, the seeded tf.data pipeline with pad-crop-flip
augmentation, and (for learning loss) the `LossLearner` train step. This
benchmark times that call against a plain `fit` of the same backbone on
in-memory float arrays with the same batch size and image count, plus two
variants that tell where the difference goes (no head; no augmentation).
Whole fits are timed, tracing included, because every cycle pays it; the
variants alternate in rounds in one process and the median is reported.

    python benchmarks/loop_cost.py --images 2560 --epochs 3 --rounds 3
"""

import argparse
import json
import statistics
import time

import numpy as np

VARIANTS = ("keras_fit_arrays", "loop_plain", "loop_no_augmentation", "loop_learning_loss")


def _plain_fit(build, x, y, training, seed):
    import keras

    from kerasll.active.training import compile_model

    keras.utils.set_random_seed(seed)
    model = build()
    steps = int(np.ceil(len(x) / training.batch_size))
    compile_model(model, training, steps)
    model.fit(x.astype("float32"), y, batch_size=training.batch_size,
              epochs=training.epochs, shuffle=True, verbose=0)


def _loop_fit(build, x, y, training, seed, with_head, augmentation):
    from kerasll.active.training import train_model

    train_model(build, x, y, training, with_head=with_head,
                augmentation=augmentation, seed=seed)


def measure_loop_cost(images=2560, epochs=3, batch_size=128, rounds=3, width=1.0,
                      model_name="small_cnn", seed=0):
    """Alternating timed rounds of the loop's training call and a plain fit.

    Args:
        images: training images per fit (CIFAR-10-shaped uint8 noise: the
            speed does not depend on the pixels).
        epochs: epochs per fit.
        batch_size: batch size of every variant (paper: 128).
        rounds: rounds per variant.
        width: channel multiplier of the model.
        model_name: a built-in model.
        seed: seed of data and weights.

    Returns:
        Dict with the median images/s per variant, the ratio of the loop
        (learning loss) to the plain fit, and per-round figures.
    """
    import keras

    from kerasll.active.training import TrainingConfig
    from kerasll.augment import Augmentation
    from kerasll.models import build_model

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=images)
    training = TrainingConfig(epochs=epochs, batch_size=batch_size)

    def build():
        return build_model(model_name, (32, 32, 3), 10, width=width)

    augmentation = Augmentation(pad=4, flip=True)
    runs = {
        "keras_fit_arrays": lambda: _plain_fit(build, x, y, training, seed),
        "loop_plain": lambda: _loop_fit(build, x, y, training, seed, False, augmentation),
        "loop_no_augmentation": lambda: _loop_fit(build, x, y, training, seed, True, None),
        "loop_learning_loss": lambda: _loop_fit(
            build, x, y, training, seed, True, augmentation
        ),
    }
    rates = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            keras.backend.clear_session()
            start = time.perf_counter()
            runs[name]()
            rates[name].append(images * epochs / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "model": f"{model_name} (width {width:g})",
        "images": images,
        "epochs": epochs,
        "batch_size": batch_size,
        "rounds": rounds,
        "images_per_s": median,
        "per_round": rates,
        "ratio": median["loop_learning_loss"] / median["keras_fit_arrays"],
    }


def section_figures(data, folder):
    """RESULTS.md §2's figures: `measure_loop_cost` at its defaults.

    Args:
        data: the CIFAR-10 npz (unused: the images are noise).
        folder: the section's folder (unused: nothing but its figures is kept).

    Returns:
        `measure_loop_cost`'s answer.
    """
    return measure_loop_cost()


def section_markdown(figures):
    """RESULTS.md §2 from `section_figures`' answer (`run.Section.markdown`)."""
    rates = figures["images_per_s"]
    base = rates["keras_fit_arrays"]
    rows = "\n".join(
        f"| {name} | {rates[name]:.0f} | {rates[name] / base:.2f} |"
        for name in VARIANTS
    )
    return f"""## 2. Cost of the simulate loop

Command: `python benchmarks/loop_cost.py` — {figures['model']}, {figures['images']:,}
images x {figures['epochs']} epochs per fit, batch {figures['batch_size']}; whole fits
timed (model build, compile and tracing included, as every cycle pays them),
{figures['rounds']} alternating rounds in one process, medians.

| variant | images/s | vs plain fit |
|---|---|---|
{rows}

`keras_fit_arrays`: plain `keras.Model.fit` on in-memory float arrays, no
augmentation. `loop_*`: `kerasll.active.training.train_model`, what each
simulate cycle runs (seeded tf.data pipeline, pad-crop-flip augmentation per
image): without the head, with the head but no augmentation, and as
learning loss trains. Target for `loop_learning_loss`: 0.9 of the plain fit.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(measure_loop_cost(args.images, args.epochs, rounds=args.rounds,
                                       width=args.width), indent=1))


if __name__ == "__main__":
    main()
