"""`ExportReport`: what `to_onnx` wrote and how well it agrees with Keras."""

import dataclasses
import os

from kerasll.export import verify


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What was exported and how well it agrees with Keras.

    Attributes:
        path: the written file.
        precision: "fp32", "fp16" or "int8".
        opset: ONNX opset of the graph.
        file_size: bytes on disk.
        input_name, input_shape, input_dtype, layout: the graph input (shape
            with None for the batch axis).
        outputs: graph output names (task outputs, then "predicted_loss").
        verify_count: items verification ran on (one onnxruntime batch).
        verify_source: "verify_data", "calibration_data" or "generated".
        max_abs_diff: per output, max |exported graph - Keras|.
        allowed_diff: per output, the fp32 bound tolerance * max(1, max|Keras|).
        fp32_max_abs_diff: per output, max |fp32 graph - Keras| (the parity
            check every export passes; equal to `max_abs_diff` for fp32).
        spearman: Spearman correlation of `predicted_loss` with the reference
            (Keras for fp32, the fp32 graph for fp16/int8); NaN if undefined.
        top_overlap: share of the reference's top-`top_fraction` predicted-loss
            picks the exported graph also picks.
        kendall_tau: Kendall's tau of `predicted_loss` with the same reference.
        top_fraction: the share of items picked (0.1).
        min_top_overlap, min_kendall_tau: the bounds fp16/int8 exports had to
            meet.
        argmax_agreement: per (B, C>1) task output, the share of rows whose
            argmax matches Keras.
        fp32_nodes: int8 only: nodes kept in fp32 (the loss head's dense
            part, and depthwise convolutions when the setting says so).
        int8_trials: int8 only: the `kerasll.export.verify.RankingTrial` of
            each setting tried, in order; the last is the one written.
    """

    path: str
    precision: str
    opset: int
    file_size: int
    input_name: str
    input_shape: tuple
    input_dtype: str
    layout: str
    outputs: tuple
    verify_count: int
    verify_source: str
    max_abs_diff: dict
    allowed_diff: dict
    fp32_max_abs_diff: dict
    spearman: float
    top_overlap: float
    kendall_tau: float
    top_fraction: float
    min_top_overlap: float
    min_kendall_tau: float
    argmax_agreement: dict
    fp32_nodes: tuple = ()
    int8_trials: tuple = ()

    @property
    def int8_setting(self):
        """int8 only: the name of the setting written, else None."""
        return self.int8_trials[-1].setting if self.int8_trials else None

    def lines(self):
        """The report as printable lines."""
        shape = ", ".join(
            "batch" if size is None else str(size) for size in self.input_shape
        )
        reference = "Keras" if self.precision == "fp32" else "the fp32 graph"
        rows = [
            f"Exported {self.path} ({self.precision}, opset {self.opset}, "
            f"{_size(self.file_size)})",
            f"Input {self.input_name!r} {self.input_dtype} ({shape}) {self.layout}; "
            f"outputs: {', '.join(self.outputs)}",
            f"Verified with onnxruntime (CPU) against Keras on {self.verify_count} "
            f"items ({self.verify_source}):",
        ]
        width = max(len(name) for name in self.outputs)
        for name in self.outputs:
            row = f"  {name:<{width}}  max |diff| {self.max_abs_diff[name]:.3g}"
            if self.precision == "fp32":
                row += f" (allowed {self.allowed_diff[name]:.3g})"
            else:
                row += f" (fp32 graph: {self.fp32_max_abs_diff[name]:.3g})"
            if self.argmax_agreement.get(name) is not None:
                row += f", argmax agreement {self.argmax_agreement[name]:.4f}"
            rows.append(row)
        overlap = (
            f"predicted_loss vs {reference}: Spearman {self.spearman:.4f}, "
            f"top-{self.top_fraction:.0%} overlap {self.top_overlap:.3f}"
        )
        if self.precision != "fp32":
            overlap += f" (min {self.min_top_overlap:.2f})"
        overlap += f", Kendall tau {self.kendall_tau:.4f}"
        if self.precision != "fp32":
            overlap += f" (min {self.min_kendall_tau:.2f})"
        rows.append(overlap)
        if self.int8_trials:
            rows.append(f"int8 setting: {self.int8_setting}")
            rows.extend(
                f"  tried first, refused: {trial.describe()}"
                for trial in self.int8_trials[:-1]
            )
        if self.fp32_nodes:
            rows.append(f"Kept in fp32: {len(self.fp32_nodes)} nodes")
        return rows

    def __str__(self):
        return "\n".join(self.lines())


def _size(count):
    for unit in ("B", "KB", "MB"):
        if count < 1024 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024.0
    return f"{count:.1f} GB"  # pragma: no cover


def build_report(plan, reference, fp32_outputs, fp32_nodes, numbers, int8_trials):
    """The `ExportReport` of a written export.

    Args:
        plan: the `kerasll.export.checks.Plan` the export ran.
        reference: Keras' outputs on the verification data.
        fp32_outputs: the fp32 graph's outputs on it.
        fp32_nodes: nodes an int8 graph keeps in fp32.
        numbers: the agreement numbers of the written graph
            (`max_abs_diff`, `spearman`, `top_overlap`, `kendall_tau`,
            `argmax_agreement`).
        int8_trials: the `RankingTrial`s of the int8 settings tried.

    Returns:
        An `ExportReport`.
    """
    return ExportReport(
        path=plan.path,
        precision=plan.precision,
        opset=plan.opset,
        file_size=os.path.getsize(plan.path),
        input_name=plan.input_name,
        input_shape=plan.contract.input.shape,
        input_dtype=plan.raw_dtype,
        layout=plan.layout,
        outputs=tuple(plan.outputs),
        verify_count=len(plan.x),
        verify_source=plan.source,
        allowed_diff={
            key: plan.tolerance * verify.output_scale(value)
            for key, value in reference.items()
        },
        fp32_max_abs_diff=verify.max_abs_diffs(reference, fp32_outputs),
        top_fraction=verify.TOP_FRACTION,
        min_top_overlap=plan.min_top_overlap,
        min_kendall_tau=plan.min_kendall_tau,
        fp32_nodes=fp32_nodes,
        int8_trials=tuple(int8_trials),
        **numbers,
    )
