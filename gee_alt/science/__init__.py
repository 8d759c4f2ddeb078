"""gee_alt/science"""
