"""Voice adaptation: datasets, prompts, take checks, fine-tuning processes (GUI-free)."""
