"""akhbar.models: everything training and serving must share."""
