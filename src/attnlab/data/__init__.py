"""Data: corpus readers -> normalisation and filters -> split -> tokenisation -> vocabulary -> batches."""

from attnlab.data.batching import Batch, collate, make_batches
from attnlab.data.errors import DataError
from attnlab.data.prepare import PreparedData, load_prepared, prepare_data
from attnlab.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary

__all__ = ["Batch", "collate", "make_batches", "DataError", "PreparedData", "load_prepared", "prepare_data",
           "Vocabulary", "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID"]
