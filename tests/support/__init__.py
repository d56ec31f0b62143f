"""Helpers shared by test modules (not tests themselves): no test module imports another."""
