"""akhbar.training: pretraining, fine-tuning, evaluation and reports. Imports akhbar.models, and
akhbar.cli's flag spelling (kebab_flags) for the ``python -m`` commands, only."""
