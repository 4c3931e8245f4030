"""Stand-ins for the fine-tuning code, small enough for the example's rehearsal on a laptop.

On a cluster the step images hold the real code (a tokenizer, a `torchrun` training loop, an
LLM judge); these modules take the same command-line flags, use only the standard library and
finish in well under a second, so that the pipeline itself (data, caching, the quality gate,
GPU scheduling) can be tried anywhere. Replace them with your own.
"""
