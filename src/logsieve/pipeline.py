"""Placeholder: the Pipeline object lands here."""
