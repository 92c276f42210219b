"""Batch scoring (``akhbar score``): the job, its outputs and the Ray engine. Builds on
:mod:`akhbar.serving.core`."""
