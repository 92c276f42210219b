"""The HTTP service: the BentoML service, its middleware, the reading page and the launcher
(``akhbar serve``). Builds on :mod:`akhbar.serving.core`."""
