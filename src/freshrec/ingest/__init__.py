"""Ingestion: turning untrusted request bodies into validated records, per record."""

from freshrec.ingest.batches import BadBatch, ParsedBatch, Rejection, parse_batch

__all__ = ["BadBatch", "ParsedBatch", "Rejection", "parse_batch"]
