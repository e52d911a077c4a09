"""The wording checks: what of a model's text may reach the candidate, sentence by sentence."""
