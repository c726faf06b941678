"""Models: the backbone resolver (`hub`), named presets (`presets`), loading and LoRA (`backbone`), the scratch network."""
