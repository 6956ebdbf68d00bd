"""Applying events to the models: online, per event, and in full background retrains."""
