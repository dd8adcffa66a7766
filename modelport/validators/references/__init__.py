"""Adapters that drive fairseq, transformers, ctranslate2 and sentencepiece as references."""
