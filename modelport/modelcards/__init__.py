"""Model card generation."""
