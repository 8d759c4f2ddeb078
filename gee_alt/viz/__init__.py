"""gee_alt/viz"""
