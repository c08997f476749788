"""What operations see from outside: structured logs (``logs``), the request and task context they
carry (``middleware``, ``celery_context``), and the Prometheus metrics served at ``/metrics``
(``metrics``, ``views``). README "Telemetry" lists what is logged and exported."""
