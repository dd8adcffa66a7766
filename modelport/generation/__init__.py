"""Beam search, greedy search and sampling with each framework's semantics."""

from modelport.generation.beam import FairseqBeamSearch, HFBeamSearch, MarianBeamSearch, run_search
from modelport.generation.ensemble import Ensemble, LogLinearEnsemble
from modelport.generation.sampling import SamplingOptions, SamplingSearch
from modelport.generation.semantics import SEMANTICS, FairseqOptions, HFOptions, MarianOptions
from modelport.generation.translate import generate, make_batches, translate

__all__ = ["SEMANTICS", "Ensemble", "FairseqBeamSearch", "FairseqOptions", "HFBeamSearch", "HFOptions",
           "LogLinearEnsemble", "MarianBeamSearch", "MarianOptions", "SamplingOptions", "SamplingSearch", "generate",
           "make_batches", "run_search", "translate"]
