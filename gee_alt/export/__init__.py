"""gee_alt/export"""
