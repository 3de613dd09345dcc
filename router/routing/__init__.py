"""The routing core: intents, negation, scoring and the engine that ties them together.

    intents.py      YAML schema (file:line errors), directory merge, revision
    negation.py     negation cues, scopes and refusals -> pooling weights (pure)
    head.py         the trained softmax head and its confidence (pure numpy)
    index.py        immutable exemplar matrix, scores, thresholds, the decision (pure numpy)
    vectorcache.py  exemplar vectors by (model, preprocessing, text), memory and disk
    calibration.py  thresholds from the exemplars when none tuned applies
    lint.py         what will route badly, found from a built snapshot
    scorecard.py    labelled rows and the figures measured on them (eval, the gate)
    gate.py         the regression gate: a candidate revision's figures against bounds
    engine.py       encoder + current snapshot: build, swap, classify

Never imports grpc, generated code, ``router.model``, ``serving`` or ``quality``: the
engine takes any encoder that fits its ``TextEncoder`` protocol.
"""
