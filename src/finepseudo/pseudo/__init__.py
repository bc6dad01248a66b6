"""Pseudo-labeling stage (workflow/rules/pseudo.smk): combining f_E's and f_A's predictions, the acceptance
rules, hyper-parameters chosen on validation, and the rounds' steps.
"""
