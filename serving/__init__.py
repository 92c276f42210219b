"""akhbar.serving: the BentoML service and the batch scorer. Imports akhbar.models only."""
