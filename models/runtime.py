"""The one way ONNX Runtime sessions are made, for training checks and the edge alike."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort


def inference_session(model: bytes) -> ort.InferenceSession:
    """A CPU session for small batches: one intra-op thread and no spin-waiting.

    The edge scores a few dozen rows per request. ONNX Runtime's default pool (a thread per
    core, spinning between runs) burned twice the CPU of the work itself on a 2-core store
    box, CPU the HTTP server and ingestion needed; a one-thread session is as fast here."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, features: np.ndarray, output: int | str = 0) -> np.ndarray:
    """Run ``sess`` on a feature matrix (cast to float32) and return one output."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    name = sess.get_outputs()[output].name if isinstance(output, int) else output
    return np.asarray(sess.run([name], {sess.get_inputs()[0].name: x})[0])
