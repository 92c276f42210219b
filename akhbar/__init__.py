"""akhbar: score Arabic news articles for topic, stance and extractive summary."""

__version__ = "0.1.0"
