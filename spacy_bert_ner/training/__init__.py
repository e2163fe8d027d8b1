"""Registered functions that training configs name: the corpus readers, the
optimizer with a separate head learning rate, and the JSONL training logger."""
