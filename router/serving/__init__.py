"""The gRPC service around the engine.

    batching.py  micro-batcher: queue, one consumer thread that runs the model
    reload.py    directory watcher, SIGHUP and RPC triggers, serialised reloads
    metrics.py   Prometheus metrics and the interceptor that records every call
    service.py   gRPC handlers, request validation, the one error -> status table
    server.py    grpc.aio server, health, reflection, start-up order, graceful stop

Never imports ``quality``.
"""
