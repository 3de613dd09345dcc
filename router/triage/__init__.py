"""Triage: whole files of helpdesk tickets routed in bounded batches (``intent-router triage``).

    INPUT (CSV / JSONL / stdin) -> reading.py (Ticket, file:line errors, bad-row policy)
        -> routers.py (TicketRouter: the engine in process, or a server over ClassifyStream)
        -> writing.py (one JSONL or CSV row per ticket; append-only, checkpoint per batch)
    run.py drives them: read a batch, route it, write it, commit it; ``--resume`` reads
    the checkpoint and skips the ids already written. progress.py draws the bar.

The layer sits beside ``serving``: it uses ``routing`` (in process) or the generated
``api`` stubs (a client of a running server), never ``model`` (the CLI hands it an
engine) nor ``serving``.
"""
