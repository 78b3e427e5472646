"""Data: corpus readers -> normalisation and filters -> split -> tokenisation -> vocabulary -> batches.

Import from the modules themselves (``attnlab.data.prepare``, ``attnlab.data.batching``, ...): this
package file stays empty so that importing one part does not import the others (and torch).
"""
