"""Choosing an ONNX Runtime execution provider and opening a session.

`"auto"` prefers a GPU provider, but only one that actually loads: a GPU build
of onnxruntime lists `CUDAExecutionProvider` as available even on a machine
without CUDA libraries or a GPU, then silently drops it when the session is
created. So the provider is judged by `session.get_providers()` after creation,
never by `get_available_providers()` alone.

An explicitly requested provider is strict: missing from this build, or listed
but failing to load, it is a `ProviderError` (never a silent CPU fallback).
"""

import contextlib
import dataclasses
import os
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


def open_session(model_path, providers="auto", threads=None):
    """Creates an inference session on the best (or the requested) provider.

    Args:
        model_path: path of the `.onnx` file.
        providers: see `resolve_provider`.
        threads: intra-op threads; None or 0 lets onnxruntime decide.

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
    requested = resolve_provider(providers)
    available = onnxruntime.get_available_providers()
    if requested == "auto":
        return _open_auto(model_path, threads, available)
    if requested not in available:
        raise ProviderError(
            f"Expected providers in {_choices(available)}. Received: "
            f"providers={providers!r} ({requested}), which this onnxruntime "
            f"{onnxruntime.__version__} build does not offer. Available: {available}."
        )
    session, error = _try_create(model_path, threads, _chain(requested, available))
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


def _open_auto(model_path, threads, available):
    failed = []
    for candidate in AUTO_ORDER:
        if candidate not in available:
            continue
        session, _ = _try_create(model_path, threads, _chain(candidate, available))
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


def _chain(provider, available):
    """The provider list for a session led by `provider`, with fallbacks for
    the nodes it cannot run (TensorRT hands unsupported nodes to CUDA)."""
    chain = [provider]
    if provider == TENSORRT and CUDA in available:
        chain.append(CUDA)
    if provider != CPU:
        chain.append(CPU)
    return chain


def _choices(available):
    offered = [alias for alias, name in ALIASES.items() if name in available]
    return ["auto"] + offered
