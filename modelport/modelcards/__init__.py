"""Model card generation (huggingface_hub ModelCard from a ported folder's files)."""

from modelport.modelcards.card import make_card, write_card

__all__ = ["make_card", "write_card"]
