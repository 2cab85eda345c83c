"""What does the loss-prediction head cost in training throughput?

The same backbone is trained with plain `keras.Model.fit` and wrapped in a
`LossLearner` (head + ranking loss), in alternating timed rounds in one
process, so both see the same machine state. Reports images/s and the ratio.

    python benchmarks/head_cost.py --models small_cnn,resnet18 --steps 20 --rounds 3
"""

import argparse
import json
import statistics
import time

import numpy as np


def _timed_fit(model, x, y, batch_size, warmup):
    """Images/s of one epoch of `fit`, timing the batches after `warmup`."""
    import keras

    durations, started = [], []

    def begin(batch, logs):
        started.append(time.perf_counter())

    def end(batch, logs):
        if batch >= warmup:
            durations.append(time.perf_counter() - started[-1])

    timer = keras.callbacks.LambdaCallback(on_train_batch_begin=begin,
                                           on_train_batch_end=end)
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[timer])
    return batch_size * len(durations) / sum(durations)


def _compiled(model):
    import keras

    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def measure_head_cost(model_name, steps=20, rounds=3, batch_size=128, warmup=2,
                      input_shape=(32, 32, 3), num_classes=10, seed=0):
    """Alternates plain and LossLearner training rounds of one backbone.

    Args:
        model_name: a built-in model name (`kerasll.models.build_model`).
        steps: timed steps per round (after `warmup` untimed ones).
        rounds: alternating rounds per variant.
        batch_size: training batch size (paper: 128).
        warmup: untimed steps at the start of each round.
        input_shape: image shape (CIFAR-10 by default).
        num_classes: classes of the synthetic labels.
        seed: seed of weights and synthetic data.

    Returns:
        Dict with the median images/s of each variant, their ratio and the
        per-round figures.
    """
    import keras

    from kerasll import LossLearner
    from kerasll.models import build_model

    rng = np.random.default_rng(seed)
    count = batch_size * (steps + warmup)
    x = rng.integers(0, 256, size=(count, *input_shape)).astype("float32")
    y = rng.integers(0, num_classes, size=count)
    keras.utils.set_random_seed(seed)
    plain = _compiled(build_model(model_name, input_shape, num_classes))
    keras.utils.set_random_seed(seed)
    learner = _compiled(LossLearner(build_model(model_name, input_shape, num_classes)))
    plain_rates, head_rates = [], []
    for _ in range(rounds):
        plain_rates.append(_timed_fit(plain, x, y, batch_size, warmup))
        head_rates.append(_timed_fit(learner, x, y, batch_size, warmup))
    plain_median = statistics.median(plain_rates)
    head_median = statistics.median(head_rates)
    return {
        "model": model_name,
        "taps": learner.taps,
        "plain_images_per_s": plain_median,
        "learner_images_per_s": head_median,
        "overhead": plain_median / head_median - 1.0,
        "plain_rounds": plain_rates,
        "learner_rounds": head_rates,
    }


def section_figures(data, folder):
    """RESULTS.md §3's figures: `measure_head_cost` of two backbones.

    Args:
        data: the CIFAR-10 npz (unused: the images are noise).
        folder: the section's folder (unused: nothing but its figures is kept).

    Returns:
        {"models": one `measure_head_cost` answer per backbone}.
    """
    return {"models": [measure_head_cost(model) for model in ("small_cnn", "resnet18")]}


def section_markdown(figures):
    """RESULTS.md §3 from `section_figures`' answer (`run.Section.markdown`)."""
    rows = "\n".join(
        f"| {m['model']} | {len(m['taps'])} ({', '.join(m['taps'])}) | "
        f"{m['plain_images_per_s']:.0f} | {m['learner_images_per_s']:.0f} | "
        f"{100 * m['overhead']:+.1f}% |"
        for m in figures["models"]
    )
    return f"""## 3. Cost of the head

Command: `python benchmarks/head_cost.py` — the same backbone trained with plain
`keras.Model.fit` and as a `LossLearner` (head + ranking loss), alternating
3 timed rounds of 20 steps (batch 128, 32x32x3, after 2 warm-up steps) in one
process; medians reported. Target: under 10%. A negative cost means the
difference is smaller than this machine's run-to-run noise at the load
average given below.

| backbone | taps | plain images/s | with head images/s | head cost |
|---|---|---|---|---|
{rows}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small_cnn,resnet18")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    for name in args.models.split(","):
        result = measure_head_cost(name, args.steps, args.rounds, args.batch_size)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
