"""The scoring core: what an article and its result look like, the limits, the runtime
configuration, the model store and the Analyzer. No HTTP and no batch here; both build on it."""
