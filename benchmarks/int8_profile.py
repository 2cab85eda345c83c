"""Where an fp32 and an int8 ONNX model spend their time, per op type.

Profiles two models with onnxruntime's built-in profiler on the same images
(CPU provider, the scorer's session settings: `ORT_ENABLE_ALL`, sequential,
the same intra-op thread count for both), running the two sessions batch by
batch in turn after a warm-up, so that a change of load hits both alike.
Kernel times (each node's median over the batches) are summed per executed
op type (after onnxruntime's graph fusions); convolutions are split by group
and kernel size into depthwise, pointwise (1x1) and full convolutions (from
the optimized graph). Also saves each optimized graph
(`SessionOptions.optimized_model_filepath`) and counts its op types, which
shows whether the int8 model's QDQ pairs were fused into QLinearConv.

Prints Markdown tables (`tables`); `benchmarks/run.py --sections int8_profile`
runs `measure` on the scoring run's MobileNetV2 models and keeps its figures
(`section_figures`).

Example:
    python benchmarks/int8_profile.py \
        benchmarks/output/scoring/run1/mobilenet-fp32.onnx \
        benchmarks/output/scoring/run1/mobilenet-int8.onnx \
        --pool benchmarks/output/scoring/run1/pool10k.npy --upscale 3
"""

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from scoring import SCRATCH

REPOSITORY = Path(__file__).resolve().parents[1]
# The scoring run whose MobileNetV2 models the section profiles (scratch).
PROFILED_RUN = SCRATCH / "run1"
PROFILE_OPTIONS = {"upscale": 3, "batches": 9, "batch_size": 256, "threads": 1}

CONV_OPS = {"Conv", "FusedConv", "NhwcConv", "NchwcConv", "NhwcFusedConv",
            "QLinearConv", "ConvInteger"}


def _options(threads, profile_prefix=None, optimized_path=None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = optimized_path
    return options


def optimized_graph(model_path, threads, out_dir):
    """The graph onnxruntime runs after `ORT_ENABLE_ALL`: op counts, conv kinds.

    Args:
        model_path: the .onnx file.
        threads: intra-op threads (the fusions do not depend on it).
        out_dir: folder where the optimized graph is written.

    Returns:
        (a `collections.Counter` of op type -> node count, with the domain
        prefixed when it is not the default one; a dict node name -> kind of
        convolution: `depthwise`, `1x1` or `full`).
    """
    import onnx
    import onnxruntime

    optimized = os.path.join(out_dir, Path(model_path).stem + "-optimized.onnx")
    onnxruntime.InferenceSession(os.fspath(model_path),
                                 _options(threads, optimized_path=optimized),
                                 providers=["CPUExecutionProvider"])
    graph = onnx.load(optimized).graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    counts = collections.Counter(
        f"{node.domain}:{node.op_type}" if node.domain else node.op_type
        for node in graph.node)
    kinds = {}
    for node in graph.node:
        if node.op_type not in CONV_OPS:
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        weight = weights.get(node.input[3 if node.op_type == "QLinearConv" else 1], [])
        kernel = attributes.get("kernel_shape") or weight[2:]
        if attributes.get("group", 1) > 1:
            kinds[node.name] = "depthwise"
        elif kernel and int(np.prod(kernel)) == 1:
            kinds[node.name] = "1x1"
        else:
            kinds[node.name] = "full"
    return counts, kinds


def per_op_ms(trace, batches, conv_kinds):
    """Kernel time per op kind, ms per batch, over the last `batches` runs.

    Each node's time is its median over the runs, so a run descheduled by
    another process on a shared machine does not carry the sum.

    Args:
        trace: the parsed JSON trace of `InferenceSession.end_profiling()`.
        batches: how many of the last `model_run` events to count.
        conv_kinds: node name -> kind of convolution (`optimized_graph`).

    Returns:
        (dict op kind -> ms per batch, median ms of the whole `run`).
    """
    runs = [e for e in trace if e.get("cat") == "Session" and e["name"] == "model_run"]
    runs = runs[-batches:]
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in runs]
    durations = collections.defaultdict(list)
    kinds = {}
    for event in trace:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        if any(start <= event["ts"] <= end for start, end in windows):
            node = event["name"][:-len("_kernel_time")]
            op = event["args"]["op_name"]
            kinds[node] = f"{op} ({conv_kinds[node]})" if node in conv_kinds else op
            durations[node].append(event["dur"] / 1000.0)
    totals = collections.defaultdict(float)
    for node, times in durations.items():
        totals[kinds[node]] += float(np.median(times))
    return dict(totals), float(np.median([e["dur"] for e in runs])) / 1000.0


def profile(paths, images, batches, batch_size, threads, out_dir, conv_kinds):
    """Runs the sessions batch by batch in turn and profiles them.

    Args:
        paths: dict label -> .onnx path.
        images: uint8 array of at least `batch_size` images.
        batches: profiled batches per model after one warm-up batch.
        batch_size: images per run.
        threads: intra-op threads, the same for every model.
        out_dir: folder for the traces.
        conv_kinds: label -> (node name -> kind of convolution).

    Returns:
        dict label -> (per-op ms per batch, whole-run ms per batch).
    """
    import onnxruntime

    sessions = {}
    for label, path in paths.items():
        prefix = os.path.join(out_dir, f"profile-{label}")
        sessions[label] = onnxruntime.InferenceSession(
            os.fspath(path), _options(threads, profile_prefix=prefix),
            providers=["CPUExecutionProvider"])
    starts = [(i * batch_size) % max(1, len(images) - batch_size + 1)
              for i in range(batches + 1)]
    for start in starts:  # the first round is the warm-up
        batch = images[start:start + batch_size]
        for session in sessions.values():
            name = session.get_inputs()[0].name
            session.run(None, {name: batch})
    results = {}
    for label, session in sessions.items():
        with open(session.end_profiling()) as trace_file:
            results[label] = per_op_ms(json.load(trace_file), batches, conv_kinds[label])
    return results


def measure(fp32, int8, pool, upscale=1, batches=3, batch_size=256, threads=0):
    """Profiles an fp32 and an int8 model on the same images, per op type.

    Args:
        fp32: the fp32 .onnx model.
        int8: the int8 .onnx model.
        pool: a .npy of uint8 images (N, H, W, C).
        upscale: repeat each pixel this many times per axis (CIFAR-10 -> 96
            px: 3).
        batches: profiled batches per model after one warm-up batch.
        batch_size: images per run.
        threads: intra-op threads for both sessions (0: onnxruntime's
            default, as the scorer).

    Returns:
        JSON-friendly figures: the settings, `ops` (label -> op kind -> ms
        per batch), `run_ms` (label -> median whole-run ms per batch) and
        `graph_ops` (label -> op type -> nodes in the optimized graph).

    Raises:
        ValueError: `batches`, `batch_size` or `upscale` below 1.
    """
    import onnxruntime

    if batches < 1 or batch_size < 1 or upscale < 1:
        raise ValueError(f"Expected batches, batch_size and upscale >= 1. Received: "
                         f"{batches}, {batch_size}, {upscale}")
    images = np.asarray(np.load(pool, mmap_mode="r")[:batch_size * batches])
    if upscale > 1:
        images = np.repeat(np.repeat(images, upscale, axis=1), upscale, axis=2)
    images = np.ascontiguousarray(images)
    paths = {"fp32": fp32, "int8": int8}
    with tempfile.TemporaryDirectory() as out_dir:
        graphs = {label: optimized_graph(path, threads, out_dir)
                  for label, path in paths.items()}
        results = profile(paths, images, batches, batch_size, threads, out_dir,
                          {label: graph[1] for label, graph in graphs.items()})
    return {
        "onnxruntime": onnxruntime.__version__, "threads": threads,
        "batches": batches, "batch_size": batch_size,
        "ops": {label: ops for label, (ops, _) in results.items()},
        "run_ms": {label: run_ms for label, (_, run_ms) in results.items()},
        "graph_ops": {label: dict(graph[0]) for label, graph in graphs.items()},
    }


def tables(figures):
    """Markdown tables of `measure`'s figures.

    Args:
        figures: what `measure` returned.

    Returns:
        Markdown text.
    """
    fp32_ops, int8_ops = figures["ops"]["fp32"], figures["ops"]["int8"]
    fp32_run, int8_run = figures["run_ms"]["fp32"], figures["run_ms"]["int8"]
    lines = [
        f"onnxruntime {figures['onnxruntime']}, ORT_ENABLE_ALL, intra-op threads "
        f"{figures['threads'] or 'default'}, batch {figures['batch_size']}, "
        f"{figures['batches']} batches after 1 warm-up, sessions run in turn.",
        "",
        "| op type (executed kernel) | fp32 ms/batch | fp32 share | int8 ms/batch "
        "| int8 share |",
        "|---|---|---|---|---|",
    ]
    fp32_sum, int8_sum = sum(fp32_ops.values()), sum(int8_ops.values())
    ops = sorted(set(fp32_ops) | set(int8_ops),
                 key=lambda op: -(fp32_ops.get(op, 0) + int8_ops.get(op, 0)))
    for op in ops:
        f, i = fp32_ops.get(op), int8_ops.get(op)
        lines.append(
            f"| {op} | {f'{f:.1f}' if f else '-'} | "
            f"{f'{f / fp32_sum:.0%}' if f else '-'} | {f'{i:.1f}' if i else '-'} | "
            f"{f'{i / int8_sum:.0%}' if i else '-'} |")
    conv_fp32 = sum(ms for op, ms in fp32_ops.items() if op.split(" ")[0] in CONV_OPS)
    counts = figures["graph_ops"]
    lines += [
        f"| **sum of kernels** | {fp32_sum:.1f} | 100% | {int8_sum:.1f} | 100% |",
        f"| whole run (median) | {fp32_run:.1f} | | {int8_run:.1f} | |",
        "",
        f"int8 / fp32 speed-up (median whole run): {fp32_run / int8_run:.2f}x",
        f"convolutions' share of fp32 kernel time: {conv_fp32 / fp32_sum:.0%}",
        "",
        "| op type in the optimized graph | fp32 nodes | int8 nodes |",
        "|---|---|---|",
        *[f"| {op} | {counts['fp32'].get(op, 0)} | {counts['int8'].get(op, 0)} |"
          for op in sorted(set(counts["fp32"]) | set(counts["int8"]))],
    ]
    return "\n".join(lines)


def section_figures(data, folder):
    """Profiles the scoring run's MobileNetV2 fp32 and int8 models per op type.

    Args:
        data: the CIFAR-10 npz (unused: the pool is the scoring run's).
        folder: the section's folder (unused: nothing but its figures is kept).

    Returns:
        `measure`'s answer on `PROFILED_RUN` with `PROFILE_OPTIONS`.
    """
    return measure(PROFILED_RUN / "mobilenet-fp32.onnx",
                   PROFILED_RUN / "mobilenet-int8.onnx",
                   PROFILED_RUN / "pool10k.npy", **PROFILE_OPTIONS)


def section_markdown(figures):
    """RESULTS.md §4's int8 profile from `section_figures`' answer
    (`run.Section.markdown`)."""
    options = " ".join(f"--{key.replace('_', '-')} {value}"
                       for key, value in PROFILE_OPTIONS.items())
    run = PROFILED_RUN.relative_to(REPOSITORY)
    return f"""**Where MobileNetV2's fp32 and int8 graphs spend their time.** Profiled
with onnxruntime's own profiler on run 1's saved models (each node's median
over the batches after a warm-up, the two sessions run batch by batch in
turn, `ORT_ENABLE_ALL` as the scorer):
`python benchmarks/int8_profile.py {run}/mobilenet-fp32.onnx
{run}/mobilenet-int8.onnx --pool {run}/pool10k.npy {options}`

{tables(figures)}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fp32", help="the fp32 .onnx model")
    parser.add_argument("int8", help="the int8 .onnx model")
    parser.add_argument("--pool", required=True,
                        help="a .npy of uint8 images (N, H, W, C)")
    parser.add_argument("--upscale", type=int, default=1,
                        help="repeat each pixel this many times per axis "
                             "(CIFAR-10 -> 96 px: 3)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads for both sessions "
                             "(0: onnxruntime's default, as the scorer)")
    args = parser.parse_args()
    try:
        figures = measure(args.fp32, args.int8, args.pool, args.upscale, args.batches,
                          args.batch_size, args.threads)
    except ValueError as error:
        parser.error(str(error))
    print(tables(figures))


if __name__ == "__main__":
    main()
