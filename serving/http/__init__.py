"""The HTTP service: the BentoML service, its own settings, its middleware, the reading page and
the launcher (``akhbar serve``). Builds on :mod:`akhbar.serving.core`."""
