"""Models: plain ``torch.nn.Module`` code. Imports torch only (no Lightning, YAML, plotting)."""
