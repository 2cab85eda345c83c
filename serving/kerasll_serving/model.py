"""An exported scoring model: its session, contract and provider."""

import hashlib
import logging
import os

import numpy as np

from kerasll_serving.contract import ContractError, ModelContract
from kerasll_serving.session import (
    open_session,
    read_metadata,
    tensorrt_cache_dir,
    tensorrt_options,
)

logger = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 20


class ScoringModel:
    """Opens an ONNX model exported by kerasll and runs batches through it.

    Args:
        model_path: path of the `.onnx` file.
        providers: "auto", "cpu", "cuda", "tensorrt" or an ONNX Runtime
            provider name; see `kerasll_serving.session.open_session`.
        threads: intra-op threads; None lets onnxruntime decide.

    Attributes:
        path: the model path.
        contract: the `ModelContract` read from the model's metadata.
        provider: the execution provider that runs the graph.
        provider_note: why that provider (e.g. a GPU provider failed to load).

    Raises:
        ModelError: the file is missing or not a loadable ONNX model.
        ProviderError: see `open_session`.
        ContractError: the model has no kerasll metadata, or the metadata
            names inputs/outputs the graph does not have.
    """

    def __init__(self, model_path, providers="auto", threads=None):
        self.path = os.fspath(model_path)
        opened = open_session(self.path, providers=providers, threads=threads,
                              tensorrt=self._tensorrt_options)
        self.session = opened.session
        self.provider = opened.provider
        self.provider_note = opened.note
        self.contract = ModelContract.from_metadata(
            self.session.get_modelmeta().custom_metadata_map
        )
        self._check_graph()
        self._fetch = [self.contract.predicted_loss_output,
                       *self.contract.read_outputs]
        logger.info("Scoring with %s%s", self.provider, self._note_suffix())

    def describe_provider(self):
        """Returns one line naming the provider, and why when it is a fallback."""
        return f"Provider: {self.provider}{self._note_suffix()}"

    def run(self, x):
        """Runs one batch.

        Args:
            x: the batch, already shaped and typed for the graph input.

        Returns:
            `(predicted_loss, task_output)`: a float64 vector of length B, and
            the contract's `read_outputs` as the graph returns them: one array,
            a tuple when there are several (a detector's boxes and scores), or
            None for task type "other".

        Raises:
            ContractError: the predicted-loss output is not one value per item.
        """
        outputs = self.session.run(self._fetch, {self.contract.input.name: x})
        loss = np.asarray(outputs[0])
        if loss.size != len(x) or loss.ndim > 2:
            raise ContractError(
                f"Expected output {self._fetch[0]!r} to hold one value per item, "
                f"shape ({len(x)},). Received: shape {loss.shape}."
            )
        if len(outputs) > 2:
            task = tuple(outputs[1:])
        else:
            task = outputs[1] if len(outputs) == 2 else None
        return loss.reshape(len(x)).astype(np.float64), task

    def fingerprint(self):
        """Returns the model's identity for checkpoints: size and SHA-256."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
                digest.update(chunk)
        return {"size": os.path.getsize(self.path), "sha256": digest.hexdigest()}

    def _tensorrt_options(self):
        """TensorRT options from the model's metadata (its precision) and
        file (an engine cache per model); see `session.tensorrt_options`."""
        precision = ModelContract.from_metadata(read_metadata(self.path)).precision
        cache = tensorrt_cache_dir(self.fingerprint()["sha256"])
        return tensorrt_options(precision, cache)

    def _note_suffix(self):
        return f" ({self.provider_note})" if self.provider_note else ""

    def _check_graph(self):
        inputs = [node.name for node in self.session.get_inputs()]
        outputs = [node.name for node in self.session.get_outputs()]
        contract = self.contract
        if inputs != [contract.input.name]:
            raise ContractError(
                f"Expected the graph to have the single input "
                f"{contract.input.name!r} named by its metadata. Received "
                f"graph inputs {inputs}."
            )
        if contract.task_type != "other" and not contract.task_outputs:
            raise ContractError(
                f"Expected a {contract.task_type} model to name its task output "
                "in the metadata. Received: task_outputs=[]."
            )
        wanted = [contract.predicted_loss_output, *contract.task_outputs]
        missing = [name for name in wanted if name not in outputs]
        if missing:
            raise ContractError(
                f"Expected graph outputs {wanted} named by the metadata. "
                f"Received graph outputs {outputs}; missing {missing}."
            )
