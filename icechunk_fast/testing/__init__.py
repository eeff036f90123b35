"""Test helpers that ship with the package, for code built on it."""
