"""Byte-level tokenizer: every UTF-8 byte is one token (vocabulary of 256)."""

from __future__ import annotations

import numpy as np

__all__ = ["ByteTokenizer"]


class ByteTokenizer:
    """Byte-level tokenizer with a fixed vocabulary of 256 tokens.

    Text is encoded to its UTF-8 bytes; token ``i`` is the byte value ``i``. Byte-level models
    need no training of the tokenizer and never meet an unknown token (as in ByT5, Xue et al.,
    2022, "ByT5: Towards a token-free future with pre-trained byte-to-byte models").

    Attributes
    ----------
    vocab_size : int
        Always 256.
    """

    vocab_size = 256

    def encode(self, text):
        """Encode a string to tokens.

        Parameters
        ----------
        text : str

        Returns
        -------
        tokens : ndarray of uint8, shape (n_bytes,)
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, tokens):
        """Decode tokens back to a string (invalid UTF-8 sequences become U+FFFD).

        Parameters
        ----------
        tokens : array_like of int, shape (n,)
            Values in [0, 255].

        Returns
        -------
        text : str
        """
        if hasattr(tokens, "detach"):  # a torch tensor
            tokens = tokens.detach().cpu().numpy()
        arr = np.asarray(tokens)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"tokens must be integers, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"tokens must be 1-D, got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("tokens must lie in [0, 255] for the byte tokenizer")
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def __repr__(self):
        return "ByteTokenizer(vocab_size=256)"
