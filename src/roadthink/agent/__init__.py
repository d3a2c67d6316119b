"""The visual reasoning agent: tools that look again, a multi-turn loop, thinking modes."""
