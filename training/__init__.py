"""akhbar.training: pretraining, fine-tuning, evaluation and reports. Imports akhbar.models only."""
