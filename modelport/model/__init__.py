"""The unified encoder-decoder architecture."""

from modelport.model.config import Seq2SeqConfig
from modelport.model.transformer import DecoderState, EncoderOutput, Seq2SeqModel

__all__ = ["Seq2SeqConfig", "Seq2SeqModel", "EncoderOutput", "DecoderState"]
