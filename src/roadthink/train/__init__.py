"""Training recipes: supervised fine-tuning and GRPO with verifiable rewards, on roadthink-bench."""
