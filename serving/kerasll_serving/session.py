"""Choosing an ONNX Runtime execution provider and opening a session.

`"auto"` prefers a GPU provider, but only one that actually loads: a GPU build
of onnxruntime lists `CUDAExecutionProvider` as available even on a machine
without CUDA libraries or a GPU, then silently drops it when the session is
created. So the provider is judged by `session.get_providers()` after creation,
never by `get_available_providers()` alone.

An explicitly requested provider is strict: missing from this build, or listed
but failing to load, it is a `ProviderError` (never a silent CPU fallback).

TensorRT gets options built from the model (`tensorrt_options`): fp16 or int8
kernels only when the model was exported (and verified) at that precision,
and an engine cache per model file, so the engine is built once per device.
"""

import contextlib
import dataclasses
import os
import tempfile
from numbers import Integral

import onnxruntime

from kerasll_serving.errors import ModelError, ProviderError, first_line
from kerasll_serving.validation import Interval, validate_arguments

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
PROVIDER_CHOICES = ("auto",) + tuple(ALIASES)
# What "auto" tries, in order, before falling back to the CPU.
AUTO_ORDER = (CUDA, TENSORRT)
# onnxruntime's own default severity (0 verbose .. 4 fatal), restored after probing.
_ORT_DEFAULT_SEVERITY = 2
_ORT_FATAL_ONLY = 4
_ORT_ERRORS_ONLY = 3
_THREADS = {"threads": [Interval(Integral, 0, None, closed="left"), None]}


@dataclasses.dataclass(frozen=True)
class OpenedSession:
    """A created session and how its provider was chosen.

    Attributes:
        session: the `onnxruntime.InferenceSession`.
        provider: the execution provider that runs the graph's nodes first.
        note: why this provider, e.g. that a listed GPU provider failed to load;
            empty when the choice needs no explanation.
    """

    session: onnxruntime.InferenceSession
    provider: str
    note: str = ""


def resolve_provider(name):
    """Maps a user-facing provider name to an ONNX Runtime provider.

    Args:
        name: "auto", an alias ("cpu", "cuda", "tensorrt", any case) or a full
            ONNX Runtime name such as "CUDAExecutionProvider".

    Returns:
        "auto" or the full ONNX Runtime provider name.

    Raises:
        ProviderError: `name` is not a string.
    """
    if not isinstance(name, str):
        raise ProviderError(
            f"Expected providers to be one of {list(PROVIDER_CHOICES)} or an "
            f"ONNX Runtime provider name. Received: {name!r}"
        )
    lowered = name.lower()
    if lowered == "auto":
        return "auto"
    return ALIASES.get(lowered, name)


def tensorrt_options(precision, cache_dir):
    """TensorRT execution provider options for a model.

    Args:
        precision: the model's exported precision (`contract.PRECISIONS`):
            "fp16" enables fp16 kernels, "int8" int8 ones (the graph's
            quantization nodes); "fp32" neither, so TensorRT keeps the
            precision export verified the ranking at.
        cache_dir: where TensorRT keeps built engines and timing caches
            (onnxruntime creates this last folder level itself).

    Returns:
        A dict of provider options.
    """
    cache_dir = os.fspath(cache_dir)
    return {
        "trt_fp16_enable": precision == "fp16",
        "trt_int8_enable": precision == "int8",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache_dir,
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": cache_dir,
    }


def tensorrt_cache_dir(model_sha256):
    """The engine cache folder of a model: one per model file (by hash),
    under `$XDG_CACHE_HOME` or `~/.cache` when it exists, else the
    temporary directory.

    Args:
        model_sha256: the model file's SHA-256 (hex).

    Returns:
        A path (not created: onnxruntime creates it when TensorRT loads).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    if not os.path.isdir(base):
        base = tempfile.gettempdir()
    return os.path.join(base, f"kerasll-tensorrt-{model_sha256[:16]}")


def provider_chain(provider, available, tensorrt=None):
    """The provider list for a session led by `provider`, with fallbacks for
    the nodes it cannot run (TensorRT hands unsupported nodes to CUDA).

    Args:
        provider: the leading ONNX Runtime provider name.
        available: the providers this onnxruntime build offers.
        tensorrt: TensorRT options (see `tensorrt_options`), or None for
            onnxruntime's defaults.

    Returns:
        A list for `InferenceSession(providers=...)`: names, and a
        `(name, options)` pair for TensorRT with options.
    """
    chain = [(provider, tensorrt) if provider == TENSORRT and tensorrt else provider]
    if provider == TENSORRT and CUDA in available:
        chain.append(CUDA)
    if provider != CPU:
        chain.append(CPU)
    return chain


def check_requested(providers, available):
    """Refuses an explicit provider this onnxruntime build does not offer.

    Args:
        providers: what was asked for (see `resolve_provider`).
        available: `onnxruntime.get_available_providers()`.

    Returns:
        The resolved provider name, or "auto".

    Raises:
        ProviderError: the provider is not in `available` (one line).
    """
    requested = resolve_provider(providers)
    if requested != "auto" and requested not in available:
        raise ProviderError(
            f"Expected providers in {_choices(available)}. Received: "
            f"providers={providers!r} ({requested}), which this onnxruntime "
            f"{onnxruntime.__version__} build does not offer. Available: {available}."
        )
    return requested


def open_session(model_path, providers="auto", threads=None, tensorrt=None):
    """Creates an inference session on the best (or the requested) provider.

    Args:
        model_path: path of the `.onnx` file.
        providers: see `resolve_provider`.
        threads: intra-op threads; None or 0 lets onnxruntime decide.
        tensorrt: a callable returning the TensorRT options (called only when
            TensorRT is tried), or None for onnxruntime's defaults.

    Returns:
        An `OpenedSession`.

    Raises:
        ModelError: the file is missing or not a loadable ONNX model.
        ProviderError: an explicitly requested provider is not in this
            onnxruntime build, or is listed but fails to load.
    """
    if not os.path.isfile(model_path):
        raise ModelError(
            f"Expected an ONNX model file. Received: {os.fspath(model_path)!r}, "
            "which does not exist or is not a file."
        )
    threads = validate_arguments(_THREADS, {"threads": threads}, ProviderError)[
        "threads"
    ]
    available = onnxruntime.get_available_providers()
    requested = check_requested(providers, available)
    if requested == "auto":
        return _open_auto(model_path, threads, available, tensorrt)
    session, error = _try_create(model_path, threads,
                                 _chain(requested, available, tensorrt))
    if requested in session_providers(session):
        return OpenedSession(session, requested)
    if error is not None:
        _open_cpu(model_path, threads)  # A ModelError when the model is at fault.
    reason = f" ({first_line(error)})" if error else ""
    raise ProviderError(
        f"Expected {requested} to load, as requested by providers={providers!r}. "
        f"Received: it is listed by onnxruntime but failed to load{reason}: its "
        "GPU libraries (CUDA/cuDNN/TensorRT) are missing or no GPU is visible. "
        f"Available: {available}; use providers='auto' to fall back to the CPU."
    )


def session_providers(session):
    """Returns the providers a session really uses (empty for no session)."""
    return [] if session is None else session.get_providers()


def read_metadata(model_path):
    """The model's custom metadata, read through a CPU session.

    Args:
        model_path: path of the `.onnx` file.

    Returns:
        A dict of str -> str.

    Raises:
        ModelError: the model cannot be loaded.
    """
    return _open_cpu(model_path, 1).get_modelmeta().custom_metadata_map


def _open_auto(model_path, threads, available, tensorrt):
    failed = []
    for candidate in AUTO_ORDER:
        if candidate not in available:
            continue
        session, _ = _try_create(model_path, threads,
                                 _chain(candidate, available, tensorrt))
        if candidate in session_providers(session):
            return OpenedSession(session, candidate)
        failed.append(candidate)
    session = _open_cpu(model_path, threads)
    note = (
        f"{', '.join(failed)} listed but failed to load; using the CPU"
        if failed
        else ""
    )
    return OpenedSession(session, CPU, note)


def _open_cpu(model_path, threads):
    session, error = _try_create(model_path, threads, [CPU])
    if session is None:
        raise ModelError(
            f"Expected a loadable ONNX model. Received: {os.fspath(model_path)!r}, "
            f"which onnxruntime cannot load: {first_line(error)}"
        )
    return session


def _try_create(model_path, threads, chain):
    """Returns (session, None), or (None, the exception that prevented it)."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (
        onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.log_severity_level = _ORT_ERRORS_ONLY
    with _quiet_onnxruntime():
        try:
            session = onnxruntime.InferenceSession(
                os.fspath(model_path), options, providers=chain, enable_fallback=0
            )
        except Exception as error:  # onnxruntime raises untyped Fail/RuntimeError.
            return None, error
    return session, None


@contextlib.contextmanager
def _quiet_onnxruntime():
    """Silences onnxruntime's process-wide logger while providers are probed.

    A GPU build logs a screenful of errors when CUDA libraries are missing;
    the outcome is reported by this module instead.
    """
    onnxruntime.set_default_logger_severity(_ORT_FATAL_ONLY)
    try:
        yield
    finally:
        onnxruntime.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)


def _chain(provider, available, tensorrt):
    """`provider_chain`, building the TensorRT options only when needed."""
    options = tensorrt() if provider == TENSORRT and tensorrt is not None else None
    return provider_chain(provider, available, options)


def _choices(available):
    offered = [alias for alias, name in ALIASES.items() if name in available]
    return ["auto"] + offered
