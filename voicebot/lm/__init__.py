"""Language models: n-gram LMs for rescoring and the causal chat LM (GUI-free)."""
