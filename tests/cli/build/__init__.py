"""Tests of the package of the same name (see README, "How it works")."""
