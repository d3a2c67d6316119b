"""One async interface over every model: baselines, the built-in VLM, Hugging Face, OpenAI-compatible servers."""
