"""From a Keras model to device picks: train, rank, export, score.

Trains a `LossLearner` on the embedded 8x8 digits (no download), checks that
its predicted loss ranks the test set, exports the combined graph to ONNX and
scores the test set with the TensorFlow-free device scorer.

    python examples/quickstart.py --out quickstart-output
"""

import argparse
from pathlib import Path

import keras
import numpy as np

from kerasll import LossLearner
from kerasll.data import load_digits
from kerasll.export import to_onnx
from kerasll.models import build_model
from kerasll_serving import PoolScorer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="quickstart-output")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    keras.utils.set_random_seed(0)
    backbone = build_model("small_cnn", digits.x_train.shape[1:], len(digits.class_names))
    learner = LossLearner(backbone, detach_epoch=int(0.6 * args.epochs))
    learner.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    learner.fit(digits.x_train.astype("float32"), digits.y_train,
                epochs=args.epochs, batch_size=64, verbose=0)
    logs = learner.evaluate(digits.x_test.astype("float32"), digits.y_test,
                            verbose=0, return_dict=True)
    print(f"test accuracy {logs['accuracy']:.3f}, head rank accuracy "
          f"{logs['rank_accuracy']:.3f} (0.5 = chance)")

    model_path = out / "digits.onnx"
    report = to_onnx(learner, model_path, raw_input_dtype="uint8",
                     verify_data=digits.x_test[:128],
                     class_names=[str(name) for name in digits.class_names])
    print("\n".join(report.lines()))

    pool = out / "pool.npy"
    np.save(pool, digits.x_test)
    result = PoolScorer(model_path, providers="auto").score(
        pool, k=10, out=out / "picks.csv")
    print(result.summary())
    for pick in result.picks[:5]:
        print(f"  #{pick.rank}: item {pick.item} predicted loss "
              f"{pick.predicted_loss:.3f}, predicted {pick.prediction} "
              f"(true {digits.y_test[pick.index]})")


if __name__ == "__main__":
    main()
