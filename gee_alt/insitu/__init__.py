"""gee_alt/insitu"""
