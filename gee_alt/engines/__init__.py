"""gee_alt/engines"""
