"""The tests, in folders that mirror the packages (README, "How it works"); shared worlds in tests/world/."""
