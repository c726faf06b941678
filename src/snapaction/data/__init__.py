"""Clips before the model: layouts and manifests, splits, the data check, sampling, the decoded-clip cache, datasets."""
