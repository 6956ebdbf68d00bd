"""A/B experiments and shadow models: assignment, store, outcomes, the sequential test.

See docs/experiments.md.
"""
