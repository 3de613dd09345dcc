"""Measuring and tuning routing on labelled data: ``eval`` and ``tune``.

    evaluate.py  labelled rows, metrics, threshold sweeps (pure, no model)
    tuning.py    threshold objectives, per-intent thresholds, YAML write-back
    run.py       the eval run: build the engine as ``serve`` does and ask it
    render.py    the text ``eval`` and ``tune`` print
    report.py    HTML + PNG report (``eval --report``; needs the ``eval`` extra)

Never imports grpc or ``serving``.
"""
