"""The Clear Street sandbox: a stand-alone simulator of the six positions endpoints.

It runs as its own process (``python -m sandbox``), keeps its state in a SQLite file of its own
under ``var/sandbox/`` (never in the back-office's PostgreSQL), and answers the wire contract of
the seeds (``../shared/seeds/``). Modules:

- ``wire``: envelope, decimal and timestamp formatting, ids, the ``ApiError`` every 4xx raises.
- ``clock``: the operator's clock (frozen, offset or real time) and the business date.
- ``store``: the SQLite schema and every read and write, under one lock.
- ``book``: the deterministic demo book and the large generated book for benchmarks.
- ``engine``: the endpoint rules (paging, closes, instruction batches and their lifecycle).
- ``behaviour``: how the simulated firm answers (delays, outcomes, cutoff) and request values.
- ``paging``: the positions list's page tokens.
- ``submissions``: what a submit's body must hold before anything is stored.
- ``faults``: per-endpoint fault injection.
- ``server``: the threaded HTTP server, routing, auth and the ``/sandbox/`` control surface.
- ``process``: start and stop a sandbox subprocess (tests, benchmarks).

Nothing here imports Django or the back-office: the two talk only over HTTP.
"""
