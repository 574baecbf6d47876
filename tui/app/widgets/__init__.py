"""Widgets of the dashboard; each renders part of the model and nothing else."""
