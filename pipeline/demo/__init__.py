"""Synthetic demo data: procedurally drawn scenes, captions and benchmark-format writers."""
