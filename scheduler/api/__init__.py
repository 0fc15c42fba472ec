"""Talking to the API server: connection, raw JSON requests, watches, events.

The official ``kubernetes`` client resolves kubeconfig / in-cluster credentials
(``connection``); every request on the hot path then goes through one pooled
aiohttp session carrying raw JSON (``client``), decoded into the small structs
of ``scheduler.model`` by the callers.
"""
