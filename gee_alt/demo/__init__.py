"""gee_alt/demo"""
