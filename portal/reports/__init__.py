"""Printable audit reports."""
