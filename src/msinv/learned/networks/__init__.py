"""Score networks (CNN, U-ViT) and deterministic heads, all convolutions with circular padding."""
