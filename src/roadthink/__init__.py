"""roadthink: vision-language models reasoning visually about driving scenes."""

__version__ = "0.1.0"
